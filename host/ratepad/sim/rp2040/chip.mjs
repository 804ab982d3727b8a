// One emulated Raspberry Pi Pico running a real MicroPython image in rp2040js, with what the
// emulator lacks: flash erase/program (through the boot ROM's routines), resets as a new chip
// with the same flash, power cuts at any instruction (torn flash operations included), USB
// through an emulated host (usbhost.mjs), GPIO inputs and outputs, PWM read back.
//
// Time: the chip's clock is rp2040js's SimulationClock (nanoseconds). A new chip (power-on,
// watchdog, machine.reset()) starts its clock at 0, as the RP2040's timer does, unless a start
// is given (the first boot of a keypad whose ticks_ms starts elsewhere).
import { Simulator, ConsoleLogger, LogLevel } from 'rp2040js';
import { UsbHost } from './usbhost.mjs';

export const FLASH_SIZE = 2 * 1024 * 1024; // RPI_PICO: W25Q16, 2 MiB
export const FS_OFFSET = 0xa0000; // MICROPY_HW_FLASH_STORAGE_BYTES = 1408 KiB at the top
export const FS_SIZE = 1408 * 1024;
const WATCHDOG_BASE = 0x40058;
const CYCLE_NANOS = 1e9 / 125e6;
const XIP_BASE = 0x10000000;
// Flash timing (W25Q16JV datasheet, typical): sector erase 45 ms, page program 0.4 ms; a torn
// operation is cut at one of STEPS equal parts.
const ERASE_NANOS_PER_SECTOR = 45e6;
const PROGRAM_NANOS_PER_PAGE = 0.4e6;
export const OP_STEPS = 16;
const SECTOR = 4096;
const PAGE = 256;
export const STATUS_LED_GPIO = 25;

/** The flash image (from offset 0) in a MicroPython .bin or an official .uf2 download. */
export function flashImage(bytes) {
  const u8 = new Uint8Array(bytes);
  const magic = u8.length >= 512 ? new DataView(u8.buffer, u8.byteOffset).getUint32(0, true) : 0;
  if (magic !== 0x0a324655) return u8; // not "UF2\n": a plain image
  const out = new Uint8Array(FLASH_SIZE).fill(0xff);
  let end = 0;
  for (let off = 0; off + 512 <= u8.length; off += 512) {
    const v = new DataView(u8.buffer, u8.byteOffset + off, 512);
    if (v.getUint32(0, true) !== 0x0a324655 || v.getUint32(4, true) !== 0x9e5d5157) continue;
    if (v.getUint32(8, true) & 1) continue; // "not main flash"
    const addr = v.getUint32(12, true);
    const size = v.getUint32(16, true);
    if (addr < XIP_BASE || addr + size > XIP_BASE + FLASH_SIZE || size > 476) continue;
    out.set(u8.subarray(off + 32, off + 32 + size), addr - XIP_BASE);
    end = Math.max(end, addr - XIP_BASE + size);
  }
  if (!end) throw new Error('the .uf2 holds no block for the RP2040 flash');
  return out.subarray(0, end);
}

/** ROM function table lookup (two-letter codes, RP2040 datasheet 2.8.3). */
function romFunctions(mcu) {
  const rd16 = (a) => mcu.readUint16(a);
  const funcs = {};
  for (let p = rd16(0x14); ; p += 4) {
    const code = rd16(p);
    if (!code) break;
    funcs[String.fromCharCode(code & 0xff, code >> 8)] = rd16(p + 2) & ~1;
  }
  return funcs;
}

export class Pico {
  /**
   * @param {object} o
   * @param {Uint32Array} o.bootrom
   * @param {Uint8Array} o.flash       the whole flash (FLASH_SIZE bytes)
   * @param {number} [o.clockStart=0]  nanoseconds on the chip's clock at power-on
   * @param {object} [o.watchdog]      {reason, scratch} kept through a watchdog reset
   * @param {(s: string) => void} [o.log]
   */
  constructor(o) {
    this.log = o.log ?? (() => {});
    this.flash = o.flash;
    this.bootrom = o.bootrom;
    this.instructions = 0; // executed on this chip since power-on, flash operations included
    this.cutAt = -1; // instruction count at which the power fails; -1 = never
    this.dead = false;
    this.onFlashOp = null; // (op) => void, for every erase/program begun
    this.resetRequested = false;
    this.hung = false; // the firmware stopped running (see runTo)
    const sim = new Simulator(); // only its clock and chip: the run loop is runTo()
    const clock = (this.clock = sim.clock);
    clock.nanosCounter = o.clockStart ?? 0;
    const mcu = (this.mcu = sim.rp2040);
    mcu.loadBootrom(o.bootrom);
    mcu.logger = new ConsoleLogger(LogLevel.Error);
    mcu.flash.set(this.flash.subarray(0, FLASH_SIZE));
    this.watchdog = mcu.peripherals[WATCHDOG_BASE];
    if (o.watchdog) {
      this.watchdog.reason = o.watchdog.reason;
      this.watchdog.scratchData.set(o.watchdog.scratch);
    }
    this.watchdog.onWatchdogTrigger = () => {
      // rp2040js only reports the event (and re-arms it): stop it; the owner builds a new chip
      const wd = this.watchdog;
      wd.enable = false;
      wd.timer.enable = false;
      wd.alarm.enable = false;
      this.resetRequested = true;
    };
    this._pwmAlarms = new Map();
    mcu.pwm.channels.forEach((ch, i) => {
      for (const a of [ch.alarmA, ch.alarmB, ch.alarmBottom]) this._pwmAlarms.set(a.clockAlarm, i);
    });
    this._trapFlash();
    this.host = new UsbHost(mcu.usbCtrl, clock, { log: (s) => this.log('usb: ' + s) });
    mcu.core.PC = XIP_BASE; // straight into boot2, as rp2040js's MicroPython demo does
  }

  get nanos() { return this.clock.nanos; }

  watchdogState() {
    return { reason: this.watchdog.reason, scratch: Uint32Array.from(this.watchdog.scratchData) };
  }

  // rp2040js's SSI is a stub, so the ROM's flash_range_erase ('RE') and flash_range_program
  // ('RP') would change nothing: trap their entry points and do the work on the flash array,
  // which is both what XIP reads and what the next chip boots from.
  _trapFlash() {
    const mcu = this.mcu;
    const f = romFunctions(mcu);
    const erase = f.RE;
    const program = f.RP;
    const core = mcu.core;
    const exec = core.executeInstruction.bind(core);
    core.executeInstruction = () => {
      const pc = core.PC;
      if (pc !== erase && pc !== program) return exec();
      const r = core.registers;
      const op = pc === erase
        ? { kind: 'erase', addr: r[0] >>> 0, len: r[1] >>> 0 }
        : { kind: 'program', addr: r[0] >>> 0, len: r[2] >>> 0,
            data: Uint8Array.from({ length: r[2] >>> 0 }, (_, i) => mcu.readUint8((r[1] + i) >>> 0)) };
      op.instruction = this.instructions;
      op.steps = OP_STEPS;
      this.onFlashOp?.(op);
      // the operation occupies OP_STEPS instruction slots: a cut in one of them tears it
      const cut = this.cutAt >= this.instructions && this.cutAt < this.instructions + OP_STEPS;
      const done = cut ? this.cutAt - this.instructions : OP_STEPS;
      applyFlashOp(this.flash, op, done);
      mcu.flash.set(this.flash.subarray(op.addr, op.addr + op.len), op.addr);
      if (cut) {
        this.instructions = this.cutAt;
        this.dead = true;
        return 1;
      }
      this.instructions += OP_STEPS - 1; // the caller counts one more
      core.PC = r[14] & ~1; // bx lr
      const nanos = op.kind === 'erase'
        ? ERASE_NANOS_PER_SECTOR * Math.ceil(op.len / SECTOR)
        : PROGRAM_NANOS_PER_PAGE * Math.ceil(op.len / PAGE);
      return Math.round(nanos / CYCLE_NANOS);
    };
  }

  /** Run until the clock reaches `target` ns, the power fails or the chip asks for a reset. */
  runTo(target) {
    const core = this.mcu.core;
    const clock = this.clock;
    while (clock.nanosCounter < target && !this.dead && !this.resetRequested) {
      if (this.hung) { // no instruction runs; time and the peripherals go on
        const dt = clock.nanosToNextAlarm;
        clock.tick(dt > 0 ? Math.min(dt, target - clock.nanosCounter) : target - clock.nanosCounter);
      } else if (core.waiting) {
        const dt = clock.nanosToNextAlarm;
        clock.tick(dt > 0 ? Math.min(dt, target - clock.nanosCounter) : target - clock.nanosCounter);
      } else {
        if (this.instructions === this.cutAt) { this.dead = true; break; }
        this.instructions++;
        clock.tick(core.executeInstruction() * CYCLE_NANOS);
      }
    }
  }

  /** Nanoseconds on the clock of the next thing due that can wake the sleeping core
   * (Infinity: none). A PWM slice's counter wraps are clock alarms in rp2040js but run in
   * hardware on the chip: they matter only with the slice's interrupt enabled. */
  nextAlarm() {
    const pwm = this.mcu.pwm;
    for (let a = this.clock.nextAlarm; a; a = a.next) {
      const slice = this._pwmAlarms.get(a);
      if (slice === undefined || (pwm.intEnable >> slice) & 1) return a.nanos;
    }
    return Infinity;
  }

  gpioOut(n) {
    const p = this.mcu.gpio[n];
    return p.outputEnable ? (p.outputValue ? 1 : 0) : -1;
  }

  /** The buzzer's PWM on `gpio`: [frequency Hz, duty 0..65535] while it sounds, else null. */
  pwmOn(gpio) {
    const pin = this.mcu.gpio[gpio];
    if (pin.functionSelect !== 4) return null; // not muxed to PWM
    const ch = this.mcu.pwm.channels[(gpio >> 1) & 7];
    if (!(ch.csr & 1)) return null;
    const level = gpio & 1 ? ch.cc >>> 16 : ch.cc & 0xffff;
    if (!level) return null;
    const top = ch.top + 1;
    const div = (ch.div >> 4) + (ch.div & 15) / 16 || 1;
    return [Math.round(this.mcu.clkSys / div / top / ((ch.csr & 2) ? 2 : 1)),
      Math.min(65535, Math.round((level / top) * 65535))];
  }
}

/** Erase or program `op` on `flash`, or only `done` of its OP_STEPS parts (a torn operation,
 * as NOR flash leaves it: an erase sets part of the range to 0xFF and leaves one byte half
 * erased; a program clears only part of the bits it would have cleared). */
export function applyFlashOp(flash, op, done = OP_STEPS) {
  const n = Math.floor((op.len * done) / OP_STEPS);
  if (op.kind === 'erase') {
    flash.fill(0xff, op.addr, op.addr + n);
    if (done < OP_STEPS && n < op.len) flash[op.addr + n] |= 0x0f; // the byte in progress
  } else {
    for (let i = 0; i < n; i++) flash[op.addr + i] &= op.data[i];
    if (done < OP_STEPS && n < op.len) flash[op.addr + n] &= op.data[n] | 0xf0;
  }
}

// A keypad on the emulated Pico: one chip after another (power-on, watchdog reset,
// machine.reset(), power cut) on the same flash, its USB cable to the emulated host, its key
// pins, and everything the host saw (HID reports, CDC console output).
//
// Time: "keypad time" (ns) runs from the keypad's creation and never jumps back; each chip's
// own clock starts at 0 when it powers up (the first one at `clockStart`), as an RP2040's timer
// does after any reset.
import { Pico, FLASH_SIZE, FS_OFFSET, FS_SIZE } from './chip.mjs';
import { setup } from './usbhost.mjs';

const CDC_DATA = 10;
const CDC_COMM = 2;
const HID = 3;

export class Keypad {
  /**
   * @param {object} o
   * @param {Uint8Array} o.firmware   the MicroPython image (flash from offset 0)
   * @param {Uint32Array} o.bootrom
   * @param {Uint8Array} [o.fsImage]  littlefs image for FS_OFFSET
   * @param {number} [o.clockStart]   first chip's clock at power-up (ns)
   * @param {boolean} [o.attached]    the USB cable at the start
   * @param {number} [o.pullups]      GPIO mask of inputs that read high when nothing drives them
   */
  constructor(o) {
    this.bootrom = o.bootrom;
    this.flash = new Uint8Array(FLASH_SIZE).fill(0xff);
    this.flash.set(o.firmware.subarray(0, Math.min(o.firmware.length, FS_OFFSET)), 0);
    if (o.fsImage) this.flash.set(o.fsImage.subarray(0, FS_SIZE), FS_OFFSET);
    this.now = 0; // keypad time, ns
    this.attached = o.attached ?? true;
    this.levels = new Map(); // GPIO -> level driven from outside (key pins)
    this.reports = []; // HID IN reports not collected yet
    this.cdc = []; // CDC bytes not collected yet
    this.events = []; // {t, what, ...}: boots, resets, power cuts, enumerations
    this.boots = 0;
    this.chip = null;
    this.cutNextOp = -1; // the power fails in the next flash operation, at this step
    this.opLog = null; // [] while recording flash operations
    this.totalInstructions = 0; // over every chip since creation
    this.pendingHid = []; // OUT reports waiting for the HID interface to open
    this.linkUps = 0; // times the HID interface was opened by the host
    this.log = o.log ?? (() => {});
    this.powerOn(o.clockStart ?? 0, null);
  }

  get powered() { return this.chip !== null; }

  powerOn(clockStart = 0, watchdog = null) {
    if (this.chip) return;
    this.boots++;
    const chip = new Pico({ bootrom: this.bootrom, flash: this.flash, clockStart, watchdog,
      log: (s) => this.log(s) });
    this.chip = chip;
    this.chipBase = this.now - clockStart; // keypad time when the chip's clock read 0
    for (const [gpio, level] of this.levels) chip.mcu.gpio[gpio].setInputValue(!!level);
    chip.onFlashOp = (op) => {
      if (this.opLog) this.opLog.push({ ...op, keypadInstruction: this.totalInstructions + op.instruction, t: this._t() });
      if (this.cutNextOp >= 0) {
        chip.cutAt = op.instruction + this.cutNextOp;
        this.cutNextOp = -1;
      }
    };
    chip.host.attached = this.attached;
    chip.host.onConfigured = (h) => this._configured(h);
    this.events.push({ t: this.now, what: 'boot', reason: watchdog ? watchdog.reason : 0 });
  }

  powerOff(what = 'power_off') {
    this.pendingHid = [];
    this.hidOut = null;
    this.cdcOut = null;
    if (!this.chip) return;
    this.totalInstructions += this.chip.instructions;
    this.chip = null;
    this.events.push({ t: this.now, what });
  }

  _t() { return this.chip ? this.chip.nanos + this.chipBase : this.now; }

  setAttached(on) {
    this.attached = on;
    if (!on) this.pendingHid = [];
    this.chip?.host.setAttached(on);
  }

  setLevel(gpio, level) {
    // a pin latches an edge only when its level changes (rp2040js latches one on every
    // setInputValue, so unchanged keys would interrupt too)
    if (this.levels.get(gpio) === level) return;
    this.levels.set(gpio, level);
    this.chip?.mcu.gpio[gpio].setInputValue(!!level);
  }

  /** Power fails at instruction `at` of the running chip (counted from its power-on). */
  cutAt(at) { if (this.chip) this.chip.cutAt = at; }

  runTo(t) {
    while (this.now < t) {
      const chip = this.chip;
      if (!chip) { this.now = t; break; }
      chip.runTo(t - this.chipBase);
      this.now = Math.max(this.now, chip.nanos + this.chipBase);
      if (chip.dead) {
        this.powerOff('power_cut');
      } else if (chip.resetRequested) {
        // watchdog or machine.reset(): a new chip, same flash, the watchdog's registers kept
        const wd = chip.watchdogState();
        this.powerOff('reset');
        this.powerOn(0, wd);
      } else {
        this.now = t;
      }
    }
  }

  /** Keypad time (ns) of the next thing due on the sleeping chip, or null. */
  nextDue() {
    if (!this.chip) return null;
    if (!this.chip.mcu.core.waiting) return this.now; // busy: it runs on
    const n = this.chip.nextAlarm();
    return n === Infinity ? null : n + this.chipBase;
  }

  // ---- the host's side of the USB link ----
  _configured(h) {
    const itfs = h.config.interfaces;
    const comm = itfs.find((i) => i.cls === CDC_COMM);
    const data = itfs.find((i) => i.cls === CDC_DATA);
    this.cdcOut = null;
    this.hidOut = null;
    this.events.push({ t: this._t(), what: 'configured', strings: h.strings, enumerations: h.enumerations });
    if (comm && data) {
      const inEp = data.endpoints.find((e) => e.addr & 0x80);
      const outEp = data.endpoints.find((e) => !(e.addr & 0x80));
      h.onIn(inEp.addr & 0xf, (buf) => { for (const b of buf) this.cdc.push(b); });
      // a terminal opens the port: SET_LINE_CODING 115200 8N1, SET_CONTROL_LINE_STATE DTR|RTS
      h.control(setup(0x21, 0x20, 0, comm.number, 7), new Uint8Array([0x00, 0xc2, 0x01, 0x00, 0, 0, 8]), null);
      h.control(setup(0x21, 0x22, 3, comm.number, 0), null, () => { this.cdcOut = outEp.addr; });
    }
    const hid = itfs.find((i) => i.cls === HID);
    if (hid) {
      const inEp = hid.endpoints.find((e) => e.addr & 0x80);
      const outEp = hid.endpoints.find((e) => !(e.addr & 0x80));
      h.onIn(inEp.addr & 0xf, (buf) => this.reports.push(Uint8Array.from(buf)));
      // what a HID driver asks first: the report descriptor, then SET_IDLE(0)
      const hidDesc = hid.extra.find((d) => d[1] === 0x21);
      const len = hidDesc ? hidDesc[7] | (hidDesc[8] << 8) : 64;
      h.control(setup(0x81, 6, 0x2200, hid.number, len), null, (d) => { this.reportDescriptor = d; });
      h.control(setup(0x21, 0x0a, 0, hid.number, 0), null, () => {
        this.hidOut = outEp ? outEp.addr : null;
        this.linkUps++;
        for (const b of this.pendingHid.splice(0)) this.hidWrite(b);
      });
    }
  }

  /** An OUT report; one written while the cable is in but the interface is not open yet waits
   * for it (a host writes once it has opened the device). */
  hidWrite(bytes) {
    if (!this.chip || !this.attached) return;
    if (this.hidReady) this.chip.host.write(this.hidOut, bytes);
    else this.pendingHid.push(bytes);
  }

  cdcWrite(bytes) {
    if (this.chip && this.cdcOut !== null && this.chip.host.configured) this.chip.host.write(this.cdcOut, bytes);
  }

  get hidReady() { return !!(this.chip && this.chip.host.configured && this.hidOut !== null && this.hidOut !== undefined); }
  get cdcReady() { return !!(this.chip && this.chip.host.configured && this.cdcOut !== null && this.cdcOut !== undefined); }

  state(gpios, buzzer) {
    const chip = this.chip;
    const out = {};
    for (const g of gpios) out[g] = chip ? chip.gpioOut(g) : -1;
    const h = chip?.host;
    return {
      t: this.now,
      powered: !!chip,
      boots: this.boots,
      outputs: out,
      buzzer: chip && buzzer >= 0 ? chip.pwmOn(buzzer) : null,
      configured: !!h?.configured,
      hidReady: this.hidReady,
      linkUps: this.linkUps,
      cdcReady: this.cdcReady,
      enumerations: h?.enumerations ?? 0,
      strings: h?.strings ?? {},
      deviceDescriptor: h?.deviceDescriptor ? Buffer.from(h.deviceDescriptor).toString('hex') : null,
      configDescriptor: h?.configDescriptor ? Buffer.from(h.configDescriptor).toString('hex') : null,
      reportDescriptor: this.reportDescriptor ? Buffer.from(this.reportDescriptor).toString('hex') : null,
      instructions: this.totalInstructions + (chip ? chip.instructions : 0),
      chipInstructions: chip ? chip.instructions : 0,
      watchdogReason: chip ? chip.watchdog.reason : 0,
    };
  }

  fsImage() { return this.flash.slice(FS_OFFSET, FS_OFFSET + FS_SIZE); }
}

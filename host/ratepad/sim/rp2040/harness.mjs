// The emulated keypads' process: `node harness.mjs FIRMWARE BOOTROM`, then one JSON request per
// line on stdin, one JSON answer per line on stdout ({"ok": ...} or {"error": "..."}), in
// order. Keypads are named by the caller; times are keypad nanoseconds (see keypad.mjs).
//
// Requests ("op"):
//   open   {kp, fs?: base64 littlefs image, clock_start?: ns, attached?: bool, levels?: {gpio: 0|1}}
//   run    {kp, until: ns, gpios?: [..], buzzer?: gpio} -> what happened by then: {t, reports: [hex],
//          cdc: base64, events: [...], next: ns|null, state: {...}} (state: see Keypad.state)
//   levels {kp, levels: {gpio: 0|1}}       drive input pins (keys) from now on
//   hid    {kp, hex}                        an OUT report (or bytes) to the HID interface
//   cdc    {kp, data: base64}               bytes typed on the CDC console
//   attach {kp, on}                         plug / unplug the USB cable
//   power  {kp, on}                         power off / on (a cold start: no watchdog registers)
//   cut    {kp, at?: instruction, next_op?: step}  the power fails at that instruction of the running
//          chip, or in the next flash erase/program at that step (0..15 of 16)
//   oplog  {kp, on}                         record flash operations -> {ops: [...]} when turned off
//   flash  {kp}                             -> base64 of the littlefs region
//   hang   {kp}                             the firmware stops running (interrupts off, stuck):
//          the clock and the peripherals, the watchdog among them, go on
//   replay {fs, ops, done, step?}           the littlefs image `fs` after the first `done` flash
//          operations of an oplog and `step` of the next (a power cut there) -> {fs}
//   close  {kp}
import fs from 'fs';
import readline from 'readline';
import { Keypad } from './keypad.mjs';
import { flashImage, applyFlashOp, FS_OFFSET } from './chip.mjs';

const [firmwarePath, bootromPath] = process.argv.slice(2);
const firmware = flashImage(fs.readFileSync(firmwarePath));
const romBytes = fs.readFileSync(bootromPath);
const bootrom = new Uint32Array(Uint8Array.from(romBytes).buffer);
const keypads = new Map();
const debug = process.env.RATEPAD_RP2040_DEBUG ? (s) => process.stderr.write(s + '\n') : null;

function keypad(req) {
  const kp = keypads.get(req.kp);
  if (!kp) throw new Error(`no keypad ${req.kp}`);
  return kp;
}

function levels(kp, map) {
  for (const [g, v] of Object.entries(map ?? {})) kp.setLevel(Number(g), v);
}

const ops = {
  open(req) {
    const kp = new Keypad({
      firmware, bootrom,
      fsImage: req.fs ? new Uint8Array(Buffer.from(req.fs, 'base64')) : null,
      clockStart: req.clock_start ?? 0,
      attached: req.attached ?? true,
      log: debug ? (s) => debug(`[${req.kp} ${(kp.now / 1e6).toFixed(3)}] ${s}`) : undefined,
    });
    levels(kp, req.levels);
    keypads.set(req.kp, kp);
    return {};
  },
  run(req) {
    const kp = keypad(req);
    kp.runTo(req.until);
    const out = {
      t: kp.now,
      reports: kp.reports.map((r) => Buffer.from(r).toString('hex')),
      cdc: Buffer.from(kp.cdc).toString('base64'),
      events: kp.events,
      next: kp.nextDue(),
      state: kp.state(req.gpios ?? [], req.buzzer ?? -1),
    };
    kp.reports = [];
    kp.cdc = [];
    kp.events = [];
    return out;
  },
  levels(req) { levels(keypad(req), req.levels); return {}; },
  hid(req) { keypad(req).hidWrite(new Uint8Array(Buffer.from(req.hex, 'hex'))); return {}; },
  cdc(req) { keypad(req).cdcWrite(new Uint8Array(Buffer.from(req.data, 'base64'))); return {}; },
  attach(req) { keypad(req).setAttached(!!req.on); return {}; },
  power(req) {
    const kp = keypad(req);
    if (req.on) kp.powerOn(0, null);
    else kp.powerOff();
    return {};
  },
  cut(req) {
    const kp = keypad(req);
    if (req.next_op !== undefined) kp.cutNextOp = req.next_op;
    else kp.cutAt(req.at);
    return {};
  },
  oplog(req) {
    const kp = keypad(req);
    if (req.on) { kp.opLog = []; return {}; }
    const log = (kp.opLog ?? []).map((op) => ({
      kind: op.kind, addr: op.addr, len: op.len, t: op.t, steps: op.steps,
      instruction: op.keypadInstruction,
      data: op.data ? Buffer.from(op.data).toString('base64') : null,
    }));
    kp.opLog = null;
    return { ops: log };
  },
  flash(req) { return { fs: Buffer.from(keypad(req).fsImage()).toString('base64') }; },
  hang(req) { const kp = keypad(req); if (kp.chip) kp.chip.hung = true; return {}; },
  replay(req) {
    const fs = new Uint8Array(Buffer.from(req.fs, 'base64'));
    const flash = new Uint8Array(FS_OFFSET + fs.length).fill(0xff);
    flash.set(fs, FS_OFFSET);
    const ops = req.ops.map((op) => ({ ...op, data: op.data ? new Uint8Array(Buffer.from(op.data, 'base64')) : null }));
    for (let i = 0; i < req.done; i++) applyFlashOp(flash, ops[i]);
    if (req.step !== undefined && req.step !== null && req.done < ops.length) applyFlashOp(flash, ops[req.done], req.step);
    return { fs: Buffer.from(flash.subarray(FS_OFFSET)).toString('base64') };
  },
  close(req) { keypads.delete(req.kp); return {}; },
};

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  let answer;
  try {
    const req = JSON.parse(line);
    const fn = ops[req.op];
    if (!fn) throw new Error(`unknown op ${req.op}`);
    answer = { ok: fn(req) };
  } catch (e) {
    answer = { error: `${e.name}: ${e.message}` };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}

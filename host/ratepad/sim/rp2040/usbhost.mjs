// An emulated USB host for rp2040js's device-mode USB controller: it enumerates whatever the
// firmware presents (real TinyUSB) the way a PC does, runs control transfers both ways and moves
// data on the interrupt/bulk endpoints. Callback driven (no promises), so a run is a plain loop
// and the same inputs give the same outputs.
//
// rp2040js device mode (peripherals/usb.js):
//   firmware arms an IN buffer  -> usbCtrl.onEndpointWrite(ep, data), writeDelay later
//   firmware arms an OUT buffer -> usbCtrl.onEndpointRead(ep, size); the host answers with
//     usbCtrl.endpointReadDone(ep, data) (delivered readDelay later); until then the buffer
//     stays armed, which is a NAK
//   SETUP: usbCtrl.sendSetupPacket(8 bytes); bus reset: usbCtrl.resetDevice() (10 ms)
// Gaps bridged here:
//   - re-enumeration: rp2040js ignores the D+ pull-up (SIE_CTRL.PULLUP_EN) in device mode; TinyUSB
//     toggles it when machine.USBDevice re-plugs, so we watch it and enumerate again.
//   - the status stage: a control transfer ends only once the device has *received* the status
//     stage's zero-length packet (readDelay after we hand it over). Starting the next SETUP before
//     that makes TinyUSB reset EP0 and the late packet then panics it ("Can't continue xfer on
//     inactive ep 00"); a real host never does that, so neither do we.
//   - a detached cable: IN transfers stay pending (a host that does not poll), nothing reaches
//     the firmware, and attaching again is a bus reset and a fresh enumeration.

const SIE_CTRL = 0x4c;
const PULLUP_EN = 1 << 16;
const STATUS_GAP_NANOS = 20_000; // after the status ZLP is handed over: > readDelay (10 us)
const RESET_RECOVERY_NANOS = 1_000_000; // from the end of a bus reset to the first SETUP

export function setup(bmRequestType, bRequest, wValue, wIndex, wLength) {
  return new Uint8Array([
    bmRequestType, bRequest, wValue & 0xff, wValue >> 8, wIndex & 0xff, wIndex >> 8,
    wLength & 0xff, wLength >> 8,
  ]);
}

export function parseConfig(desc) {
  // {interfaces: [{number, alt, cls, subcls, proto, endpoints: [{addr, attr, mps, interval}],
  //  extra: [descriptor bytes...]}]}
  const interfaces = [];
  let cur = null;
  for (let i = 0; i + 1 < desc.length && desc[i] >= 2; i += desc[i]) {
    const len = desc[i];
    const type = desc[i + 1];
    if (type === 4) {
      cur = { number: desc[i + 2], alt: desc[i + 3], cls: desc[i + 5], subcls: desc[i + 6],
        proto: desc[i + 7], endpoints: [], extra: [] };
      interfaces.push(cur);
    } else if (type === 5 && cur) {
      cur.endpoints.push({ addr: desc[i + 2], attr: desc[i + 3],
        mps: desc[i + 4] | (desc[i + 5] << 8), interval: desc[i + 6] });
    } else if (cur) {
      cur.extra.push(Array.from(desc.subarray(i, i + len)));
    }
  }
  return { interfaces };
}

export class UsbHost {
  constructor(usbCtrl, clock, { log = () => {} } = {}) {
    this.usb = usbCtrl;
    this.clock = clock;
    this.log = log;
    this.attached = true; // the cable
    this.pendingReads = new Map(); // OUT ep -> size the firmware armed
    this.outQueues = new Map(); // OUT ep -> [Uint8Array]
    this.inListeners = new Map(); // IN ep number -> (data) => void
    this.ctrl = null;
    this.ctrlQueue = [];
    this.resetPending = false;
    this.pullup = false;
    this.configured = false;
    this.enumerations = 0;
    this.generation = 0; // bumped by every bus reset: callbacks of older transfers are void
    this.onConfigured = null;
    this.deviceDescriptor = null;
    this.configDescriptor = null;
    this.config = { interfaces: [] };
    this.strings = {};
    this._gapAlarm = clock.createAlarm(() => this._statusDone());
    this._gapResult = null;

    usbCtrl.onUSBEnabled = () => this._plugged();
    // the firmware has handled the bus reset: enumerate after the reset recovery time
    this._enumAlarm = clock.createAlarm(() => {
      if (this.attached && this.pullup) this._enumerate();
    });
    usbCtrl.onResetReceived = () => {
      this.resetPending = false;
      this._enumAlarm.schedule(RESET_RECOVERY_NANOS);
    };
    usbCtrl.onEndpointWrite = (ep, buf) => this._deviceToHost(ep, Uint8Array.from(buf));
    usbCtrl.onEndpointRead = (ep, size) => this._hostToDeviceArmed(ep, size);
    // a detached host does not poll: an IN transfer then stays in the device's buffer
    const origReady = usbCtrl.indicateBufferReady.bind(usbCtrl);
    usbCtrl.indicateBufferReady = (ep, out) => {
      if (!this.attached && ep !== 0 && !out) return;
      origReady(ep, out);
    };
    const origWrite = usbCtrl.writeUint32.bind(usbCtrl);
    usbCtrl.writeUint32 = (offset, value) => {
      origWrite(offset, value);
      if (offset === SIE_CTRL && !usbCtrl.hostMode) {
        const p = !!(usbCtrl.sieCtrl & PULLUP_EN);
        if (p !== this.pullup) {
          this.pullup = p;
          this.log(`pull-up ${p ? 'on' : 'off'}`);
          if (p) this._plugged();
          else this._forget();
        }
      }
    };
  }

  _plugged() {
    this.pullup = true;
    if (this.attached) this._busReset();
  }

  _busReset() {
    this._forget();
    if (this.resetPending) return;
    this.resetPending = true;
    this.usb.resetDevice();
  }

  _forget() {
    this.configured = false;
    this.generation++;
    this.ctrl = null;
    this.ctrlQueue = [];
    this.pendingReads.clear();
    this._gapAlarm.cancel();
    this._enumAlarm.cancel();
    this._gapResult = null;
  }

  /** Plug or unplug the cable (the keypad keeps its own power). */
  setAttached(on) {
    if (on === this.attached) return;
    this.attached = on;
    if (on) {
      if (this.pullup) this._busReset();
    } else {
      this._forget();
      for (const q of this.outQueues.values()) q.length = 0;
    }
  }

  // ---------- control transfers ----------
  /** Queue a control transfer; done(result) gets the IN data (Uint8Array) or true. */
  control(setupPkt, outData, done) {
    this.ctrlQueue.push({ setup: setupPkt, outData, done, generation: this.generation });
    if (!this.ctrl && !this._gapResult) this._nextControl();
  }

  _nextControl() {
    const t = this.ctrlQueue.shift();
    if (!t) { this.ctrl = null; return; }
    const wLength = t.setup[6] | (t.setup[7] << 8);
    const dirIn = !!(t.setup[0] & 0x80);
    this.ctrl = { ...t, dirIn, wLength, inData: [], outOffset: 0,
      phase: dirIn && wLength ? 'data-in' : wLength ? 'data-out' : 'status-in' };
    this.pendingReads.delete(0); // a SETUP voids an EP0 OUT buffer armed before
    this.usb.sendSetupPacket(t.setup);
  }

  _finishControl(result) {
    const c = this.ctrl;
    this.ctrl = null;
    if (c.generation === this.generation) c.done?.(result);
    if (!this.ctrl && !this._gapResult) this._nextControl();
  }

  _statusDone() {
    const r = this._gapResult;
    this._gapResult = null;
    if (r) {
      this.ctrl = r.ctrl;
      this._finishControl(r.result);
    }
  }

  // ---------- endpoint plumbing ----------
  _deviceToHost(ep, data) {
    if (!this.attached) return;
    if (ep === 0) {
      const c = this.ctrl;
      if (!c) return;
      if (c.phase === 'data-in') {
        for (const b of data) c.inData.push(b);
        if (data.length < 64 || c.inData.length >= c.wLength) {
          c.phase = 'status-out';
          if (this.pendingReads.has(0)) this._hostToDeviceArmed(0, this.pendingReads.get(0));
        }
      } else if (c.phase === 'status-in' && data.length === 0) {
        this._finishControl(true);
      }
      return;
    }
    const cb = this.inListeners.get(ep);
    if (cb) cb(data);
  }

  _hostToDeviceArmed(ep, size) {
    if (!this.attached) { this.pendingReads.set(ep, size); return; }
    if (ep === 0) {
      const c = this.ctrl;
      if (c && c.phase === 'data-out') {
        const chunk = c.outData.subarray(c.outOffset, c.outOffset + 64);
        c.outOffset += chunk.length;
        if (c.outOffset >= c.outData.length) c.phase = 'status-in';
        this.pendingReads.delete(0);
        this.usb.endpointReadDone(0, chunk);
        return;
      }
      if (c && c.phase === 'status-out') {
        this.pendingReads.delete(0);
        this.usb.endpointReadDone(0, new Uint8Array(0));
        // done once the device has the ZLP, not now (see the header)
        this.ctrl = null;
        this._gapResult = { ctrl: c, result: Uint8Array.from(c.inData) };
        this._gapAlarm.schedule(STATUS_GAP_NANOS);
        return;
      }
      this.pendingReads.set(0, size);
      return;
    }
    const q = this.outQueues.get(ep);
    if (q && q.length) {
      const data = q.shift();
      this.pendingReads.delete(ep);
      this.usb.endpointReadDone(ep, data.subarray(0, size));
    } else {
      this.pendingReads.set(ep, size);
    }
  }

  /** Queue bytes for an OUT endpoint, as packets of mps bytes. */
  write(ep, data, mps = 64) {
    if (!this.attached) return;
    const q = this.outQueues.get(ep) ?? [];
    this.outQueues.set(ep, q);
    for (let i = 0; i < data.length; i += mps) q.push(Uint8Array.from(data.subarray(i, i + mps)));
    if (this.pendingReads.has(ep)) this._hostToDeviceArmed(ep, this.pendingReads.get(ep));
  }

  onIn(ep, cb) { this.inListeners.set(ep, cb); }

  // ---------- enumeration, as a PC does it ----------
  _enumerate() {
    this._forget();
    this.enumerations++;
    const g = this.generation;
    const steps = [];
    // A chain of callbacks (control() calls back synchronously from the run loop).
    const run = (i, prev) => { if (g === this.generation && i < steps.length) steps[i](prev, (r) => run(i + 1, r)); };
    steps.push((_, next) => this.control(setup(0x00, 5, 1, 0, 0), null, next)); // SET_ADDRESS
    steps.push((_, next) => this.control(setup(0x80, 6, 0x0100, 0, 18), null, next));
    steps.push((d, next) => { this.deviceDescriptor = d; this.control(setup(0x80, 6, 0x0200, 0, 9), null, next); });
    steps.push((head, next) => {
      const total = head[2] | (head[3] << 8);
      this.control(setup(0x80, 6, 0x0200, 0, total), null, next);
    });
    steps.push((cfg, next) => {
      this.configDescriptor = cfg;
      this.config = parseConfig(cfg);
      this.strings = {};
      next(null);
    });
    for (const [name, at] of [['manufacturer', 14], ['product', 15], ['serial', 16]]) {
      steps.push((_, next) => {
        const idx = this.deviceDescriptor[at];
        if (!idx) { next(null); return; }
        this.control(setup(0x80, 6, 0x0300 | idx, 0x0409, 255), null, (s) => {
          this.strings[name] = Buffer.from(s.subarray(2)).toString('utf16le');
          next(null);
        });
      });
    }
    steps.push((_, next) => this.control(setup(0x00, 9, 1, 0, 0), null, next)); // SET_CONFIGURATION
    steps.push(() => {
      this.configured = true;
      this.log(`configured ${JSON.stringify(this.strings)}`);
      this.onConfigured?.(this);
    });
    run(0, null);
  }
}

# The keypad's USB device: MicroPython's built-in CDC (the REPL, for mpremote) plus one
# vendor-defined HID interface carrying the ratepad byte stream in 64-byte reports. Built directly
# on machine.USBDevice, so a keypad needs nothing beyond MicroPython and these files. The model
# read was micropython-lib's usb-device core.py and usb-device-hid hid.py (whose stock HID has an
# 8-byte IN endpoint only); this is a separate, smaller implementation of one fixed interface.
#
# Configuration descriptor = the built-in one (config header, CDC IAD and interfaces), then:
#   interface  9  bInterfaceNumber = built-in itf_max, 2 endpoints, class 3 (HID), no boot protocol
#   HID        9  HID 1.11, one report descriptor (REPORT_DESC)
#   endpoint   7  IN  0x80|ep, interrupt, 64 bytes, bInterval 1 ms     (ep = built-in ep_max)
#   endpoint   7  OUT ep,      interrupt, 64 bytes, bInterval 1 ms
# with wTotalLength and bNumInterfaces patched in the header. Device descriptor: the built-in
# one with our VID/PID and string indexes 1-3 (manufacturer, product, serial) overridden.
#
# Callbacks (run by the USB task) only set flags and hand out buffers allocated here once; the
# device loop does the work through:
#   configured           the host selected our configuration (a bus reset clears it)
#   event                set by every callback: the loop has something to look at
#   rx_ready, take()     length / zero-padded buffer of a received OUT report; rx_done() when
#                        consumed, which re-arms the OUT transfer (arm() also does)
#   can_send(), send()   one IN report in flight at a time; its buffer stays untouched until
#                        in_busy clears
from micropython import const
import machine
import struct
from rpfw import board
from rpfw.settings import Settings

REPORT = const(64)
VID = const(0x1209)  # pid.codes
PID = const(0x0001)  # pid.codes test PID: development keypads only, allocate one to ship
BCD_DEVICE = const(0x0100)
HID_BLOCK = const(32)  # bytes appended to the built-in configuration descriptor

_INTERVAL_MS = const(1)
_EP_IN = const(0x80)
_T_CONFIG = const(2)
_T_INTERFACE = const(4)
_T_ENDPOINT = const(5)
_T_HID = const(0x21)
_T_REPORT = const(0x22)
_CLASS_HID = const(3)
_INTERRUPT = const(3)
# control transfers
_SETUP = const(1)
_ACK = const(3)
_TO_INTERFACE = const(1)
_STANDARD = const(0)
_CLASS = const(1)
_GET_DESCRIPTOR = const(6)
_GET_IDLE = const(2)
_SET_IDLE = const(0x0A)
# xfer_cb's result is TinyUSB's xfer_result_t, 0 = success (shared/tinyusb/mp_usbd_runtime.c
# runtime_dev_xfer_cb; XFER_RESULT_SUCCESS in TinyUSB's tusb_types.h)
_XFER_SUCCESS = const(0)
_EBUSY = const(16)

# Vendor page 0xFF00: no OS driver claims it, hidapi/hidraw open it without admin rights.
# One input and one output report of 64 bytes, no report id (so reports are exactly 64 bytes).
REPORT_DESC = bytes(
    (
        0x06, 0x00, 0xFF,  # Usage Page (Vendor Defined 0xFF00)
        0x09, 0x01,  # Usage (0x01)
        0xA1, 0x01,  # Collection (Application)
        0x15, 0x00,  # Logical Minimum (0)
        0x26, 0xFF, 0x00,  # Logical Maximum (255)
        0x75, 0x08,  # Report Size (8)
        0x95, REPORT,  # Report Count (64)
        0x09, 0x02,  # Usage (0x02)
        0x81, 0x02,  # Input (Data, Variable, Absolute)
        0x95, REPORT,  # Report Count (64)
        0x09, 0x03,  # Usage (0x03)
        0x91, 0x02,  # Output (Data, Variable, Absolute)
        0xC0,  # End Collection
    )
)


class HidLink:
    def __init__(self, usbd=None, serial=None, vid=VID, pid=PID):
        self._usbd = machine.USBDevice() if usbd is None else usbd
        self.serial = serial  # None: the built-in serial string (the chip's unique id)
        self.vid = vid
        self.pid = pid
        self.configured = False
        self.event = False
        self.rx_ready = 0
        self.in_busy = False
        self._out_armed = False
        self._rx = bytearray(REPORT)
        self.tx = bytearray(REPORT)  # the loop's IN report buffer (see send())
        self._idle = bytearray(1)
        self.itf = 0
        self.ep_in = 0
        self.ep_out = 0
        self.desc_dev = bytearray(18)
        self.desc_cfg = None
        self.strs = None
        self._hid_desc = None

    # -- descriptors --------------------------------------------------------------------------
    def build(self, builtin):
        # Device and configuration descriptors and strings after `builtin` (a BUILTIN_* object).
        base = builtin.desc_cfg
        n = len(base) if base else 9
        cfg = bytearray(n + HID_BLOCK)
        if base:
            cfg[0:n] = base
        else:  # no built-in driver: our own header (bus powered, 250 mA)
            struct.pack_into("<BBHBBBBB", cfg, 0, 9, _T_CONFIG, 0, 0, 1, 0, 0x80, 125)
        self.itf = itf = builtin.itf_max
        ep = builtin.ep_max if builtin.ep_max > 1 else 1  # endpoint 0 is control
        self.ep_in = ep | _EP_IN
        self.ep_out = ep
        strs = [None] * (builtin.str_max if builtin.str_max > 4 else 4)
        strs[1] = "ratepad"
        strs[2] = "ratepad keypad"
        strs[3] = self.serial
        istr = len(strs)
        strs.append("ratepad link")
        self.strs = strs
        struct.pack_into("<HB", cfg, 2, len(cfg), itf + 1)  # wTotalLength, bNumInterfaces
        o = n
        struct.pack_into("<BBBBBBBBB", cfg, o, 9, _T_INTERFACE, itf, 0, 2, _CLASS_HID, 0, 0, istr)
        o += 9
        struct.pack_into("<BBHBBBH", cfg, o, 9, _T_HID, 0x0111, 0, 1, _T_REPORT,
                         len(REPORT_DESC))
        self._hid_desc = memoryview(cfg)[o : o + 9]
        o += 9
        struct.pack_into("<BBBBHB", cfg, o, 7, _T_ENDPOINT, self.ep_in, _INTERRUPT, REPORT,
                         _INTERVAL_MS)
        o += 7
        struct.pack_into("<BBBBHB", cfg, o, 7, _T_ENDPOINT, self.ep_out, _INTERRUPT, REPORT,
                         _INTERVAL_MS)
        self.desc_cfg = cfg
        d = self.desc_dev
        bd = builtin.desc_dev
        if bd and len(bd) == 18:
            d[0:18] = bd  # keeps bcdUSB, the class triple (IAD for CDC) and bMaxPacketSize0
        else:
            struct.pack_into("<BBHBBBB", d, 0, 18, 1, 0x0200, 0, 0, 0, 64)
        struct.pack_into("<HHHBBBB", d, 8, self.vid, self.pid, BCD_DEVICE, 1, 2, 3, 1)

    def start(self):
        # (Re)configure the USB device; the host enumerates it again.
        u = self._usbd
        u.active(False)
        u.builtin_driver = u.BUILTIN_DEFAULT
        self.build(u.BUILTIN_DEFAULT)
        self.configured = False
        u.config(self.desc_dev, self.desc_cfg, self.strs, self._open_itf_cb, self._reset_cb,
                 self._control_xfer_cb, self._xfer_cb)
        u.active(True)

    # -- callbacks: flags only ----------------------------------------------------------------
    def _open_itf_cb(self, desc):
        if desc[2] == self.itf:  # the built-in CDC interfaces are TinyUSB's own
            self.in_busy = False
            self._out_armed = False
            self.rx_ready = 0
            self.configured = True
        self.event = True

    def _reset_cb(self):
        # Bus reset: transfers in flight are gone and never complete.
        self.configured = False
        self.in_busy = False
        self._out_armed = False
        self.rx_ready = 0
        self.event = True

    def _xfer_cb(self, ep, result, n):
        if ep == self.ep_in:
            self.in_busy = False
        elif ep == self.ep_out:
            self._out_armed = False
            if result == _XFER_SUCCESS:
                self.rx_ready = n
        self.event = True

    def _control_xfer_cb(self, stage, req):
        # HID requests for our interface. SET_REPORT/GET_REPORT are stalled on purpose: with an
        # interrupt OUT endpoint, hosts send output reports there (hidraw write, WriteFile),
        # and input reports only flow on the interrupt IN endpoint.
        if (req[0] & 0x1F) != _TO_INTERFACE or req[4] != self.itf:
            return False
        kind = (req[0] >> 5) & 3
        r = req[1]
        if stage == _SETUP:
            if kind == _STANDARD and r == _GET_DESCRIPTOR:
                if req[3] == _T_REPORT:
                    return REPORT_DESC
                if req[3] == _T_HID:
                    return self._hid_desc
                return False
            if kind == _CLASS:
                if r == _SET_IDLE:
                    return True
                if r == _GET_IDLE:
                    return self._idle
            return False
        if stage == _ACK and kind == _CLASS and r == _SET_IDLE:
            self._idle[0] = req[3]  # duration; the stream has no idle repeats anyway
        return True

    # -- the device loop's side ---------------------------------------------------------------
    def _submit(self, ep, buf):
        # True once a transfer is in flight on `ep`. submit_xfer raises EINVAL until the USB task
        # has applied active(True), EBUSY if a transfer is already in flight there (ours: the
        # flags below lag a callback), and returns False while the host has not opened `ep`.
        try:
            return self._usbd.submit_xfer(ep, buf)
        except OSError as e:
            return e.args[0] == _EBUSY

    def arm(self):
        # Hand the OUT buffer to USB, unless it holds a report the loop has not taken.
        if self.configured and not self._out_armed and not self.rx_ready:
            self._out_armed = True  # first: the callback may run before submit returns
            if not self._submit(self.ep_out, self._rx):
                self._out_armed = False

    def take(self):
        # The received OUT report, zeroed past its length (zeros are padding in the stream).
        rx = self._rx
        for i in range(self.rx_ready, REPORT):
            rx[i] = 0
        return rx

    def rx_done(self):
        self.rx_ready = 0
        self.arm()

    def can_send(self):
        return self.configured and not self.in_busy

    def send(self, report):
        # Start one IN transfer of `report` (64 bytes); False if it cannot go now.
        if not self.can_send():
            return False
        self.in_busy = True
        if self._submit(self.ep_in, report):
            return True
        self.in_busy = False
        return False


# -- boot -------------------------------------------------------------------------------------
LINK = None  # the HidLink boot.py started; None in maintenance mode
MAINTENANCE = False


def boot(storage, key1_down, usbd=None):
    # boot.py, before USB enumerates: maintenance mode leaves MicroPython's built-in USB (CDC
    # REPL only) alone; otherwise start the composite device. Returns the link or None.
    global LINK, MAINTENANCE
    MAINTENANCE = board.maintenance_boot(storage, key1_down)
    LINK = None
    if MAINTENANCE:
        return None
    s = Settings(storage)
    s.load()
    LINK = HidLink(usbd, s.get("serial") or None)
    LINK.start()
    return LINK

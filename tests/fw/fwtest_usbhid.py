# The keypad's USB device (rpfw.usbhid) on the fake machine.USBDevice: descriptors, enumeration,
# HID control requests, transfers, maintenance mode, and callbacks that allocate nothing.
# Runs on CPython and on MicroPython (where the heap lock makes "allocates nothing" a proof).
import machine  # the fake board (sim/mp/machine.py): the harness maps it on both engines

from sim.memstorage import MemStorage
from rpfw import usbhid

_SERIAL = "KP-0042"


def _link(serial=_SERIAL, configure=True):
    machine.fake_reset()
    st = MemStorage()
    if serial:
        st.files["settings"] = bytearray(("serial=" + serial + "\n").encode())
    link = usbhid.boot(st, False)
    usbd = machine.USBDevice()
    if configure:
        usbd.configure()
    return link, usbd


def _u16(b, o):
    return b[o] | (b[o + 1] << 8)


def _walk(cfg):
    # [(offset, length, type)] of every descriptor; each must fit exactly.
    out = []
    o = 0
    while o < len(cfg):
        n = cfg[o]
        assert n >= 2, (o, n)
        assert o + n <= len(cfg), (o, n)
        out.append((o, n, cfg[o + 1]))
        o += n
    assert o == len(cfg)
    return out


def _report_items(desc):
    # (tag byte, value) of every short item of a HID report descriptor.
    items = []
    o = 0
    while o < len(desc):
        tag = desc[o]
        size = (0, 1, 2, 4)[tag & 3]
        v = 0
        for i in range(size):
            v |= desc[o + 1 + i] << (8 * i)
        items.append((tag & 0xFC, v))
        o += 1 + size
    assert o == len(desc)
    return items


def test_configuration_descriptor_keeps_cdc_and_adds_a_64_byte_hid():
    link, usbd = _link()
    cfg = bytes(usbd.desc_cfg)
    builtin = usbd.BUILTIN_DEFAULT
    assert usbd.builtin_driver is builtin  # the built-in CDC (REPL) stays
    assert usbd.active()
    # header: total length, interface count
    assert cfg[0] == 9 and cfg[1] == 2
    assert _u16(cfg, 2) == len(cfg) == len(builtin.desc_cfg) + usbhid.HID_BLOCK
    descs = _walk(cfg)
    itfs = [cfg[o + 2] for o, n, t in descs if t == 4]
    assert cfg[4] == len(itfs) == builtin.itf_max + 1 == 3
    # the built-in part is untouched but for the header's length and interface count
    n0 = len(builtin.desc_cfg)
    assert cfg[5:n0] == builtin.desc_cfg[5:] and cfg[:2] == builtin.desc_cfg[:2]
    # the HID interface: interface, HID descriptor, then its two endpoints
    tail = [(o, n, t) for o, n, t in descs if o >= n0]
    assert [(n, t) for o, n, t in tail] == [(9, 4), (9, 0x21), (7, 5), (7, 5)]
    o = tail[0][0]
    assert cfg[o + 2] == link.itf == 2  # bInterfaceNumber = built-in itf_max
    assert cfg[o + 4] == 2  # bNumEndpoints
    assert (cfg[o + 5], cfg[o + 6], cfg[o + 7]) == (3, 0, 0)  # HID, no boot protocol
    assert usbd.desc_strs[cfg[o + 8]] == "ratepad link"
    h = tail[1][0]
    assert _u16(cfg, h + 2) == 0x0111 and cfg[h + 5] == 1  # HID 1.11, one class descriptor
    assert cfg[h + 6] == 0x22 and _u16(cfg, h + 7) == len(usbhid.REPORT_DESC)
    eps = []
    for o, n, t in tail[2:]:
        assert cfg[o + 3] == 3  # interrupt
        assert _u16(cfg, o + 4) == 64  # wMaxPacketSize
        assert cfg[o + 6] == 1  # polled every 1 ms
        eps.append(cfg[o + 2])
    assert eps == [0x83, 0x03] == [link.ep_in, link.ep_out]  # after the CDC's 0x81/0x02/0x82
    # every endpoint address of the whole configuration is used once
    all_eps = [cfg[o + 2] for o, n, t in descs if t == 5]
    assert len(all_eps) == len(set(all_eps)) == 5


def test_report_descriptor_is_vendor_defined_64_in_64_out():
    items = _report_items(usbhid.REPORT_DESC)
    tags = [t for t, v in items]
    assert items[0] == (0x04, 0xFF00)  # Usage Page, vendor defined (>= 0xFF00)
    assert 0x84 not in tags  # no Report ID: reports are exactly 64 bytes
    size = count = 0
    main = []
    for t, v in items:
        if t == 0x74:
            size = v
        elif t == 0x94:
            count = v
        elif t in (0x80, 0x90):  # Input, Output
            main.append((t, size * count // 8))
    assert main == [(0x80, 64), (0x90, 64)]
    assert tags.count(0xA0) == tags.count(0xC0) == 1  # one collection, closed


def test_device_descriptor_and_strings():
    link, usbd = _link()
    d = bytes(usbd.desc_dev)
    assert len(d) == 18 and d[0] == 18 and d[1] == 1
    assert (d[4], d[5], d[6]) == (0xEF, 0x02, 0x01)  # IAD class triple of the built-in CDC
    assert (_u16(d, 8), _u16(d, 10)) == (usbhid.VID, usbhid.PID) == (0x1209, 0x0001)
    assert (d[14], d[15], d[16], d[17]) == (1, 2, 3, 1)
    s = usbd.desc_strs
    assert (s[1], s[2], s[3]) == ("ratepad", "ratepad keypad", _SERIAL)
    assert s[0] is None and s[4] is None  # the languages and the CDC's string stay built-in
    link2, usbd2 = _link(serial="")
    assert usbd2.desc_strs[3] is None  # no provisioned serial: the chip's unique id


def test_enumeration_and_hid_control_requests():
    link, usbd = _link(configure=False)
    assert not link.configured
    usbd.configure()
    assert link.configured and link.event
    assert usbd.endpoints() == [0x83, 0x03]
    # GET_DESCRIPTOR (report), as a host reads it after SET_CONFIGURATION
    ok, data = usbd.control(bytes((0x81, 6, 0, 0x22, 2, 0, 0xFF, 0)))
    assert ok and data == usbhid.REPORT_DESC
    ok, data = usbd.control(bytes((0x81, 6, 0, 0x21, 2, 0, 9, 0)))
    assert ok and data == bytes(usbd.desc_cfg[len(usbd.BUILTIN_DEFAULT.desc_cfg) + 9 :][:9])
    # SET_IDLE / GET_IDLE
    assert usbd.control(bytes((0x21, 0x0A, 0, 4, 2, 0, 0, 0))) == (True, b"")
    assert usbd.control(bytes((0xA1, 0x02, 0, 0, 2, 0, 1, 0))) == (True, b"\x04")
    # output/input reports travel on the interrupt endpoints only
    assert usbd.control(bytes((0x21, 0x09, 0, 2, 2, 0, 64, 0)), b"x" * 64) == (False, None)
    assert usbd.control(bytes((0xA1, 0x01, 0, 1, 2, 0, 64, 0))) == (False, None)
    # not our interface (the CDC's), or not for an interface at all: stalled
    assert usbd.control(bytes((0x81, 6, 0, 0x22, 0, 0, 0xFF, 0))) == (False, None)
    assert usbd.control(bytes((0x82, 0, 0, 0, 0x83, 0, 2, 0))) == (False, None)


def test_out_and_in_transfers():
    link, usbd = _link()
    assert usbd.pending(link.ep_out) is None
    link.arm()
    assert usbd.pending(link.ep_out) is not None
    link.arm()  # idempotent: one OUT transfer at a time
    assert usbd.host_write(link.ep_out, bytes(range(1, 65)))
    assert link.rx_ready == 64 and link.event
    assert usbd.pending(link.ep_out) is None
    link.arm()  # the report is not taken yet: not re-armed
    assert usbd.pending(link.ep_out) is None
    assert bytes(link.take()) == bytes(range(1, 65))
    link.rx_done()
    assert link.rx_ready == 0 and usbd.pending(link.ep_out) is not None
    assert usbd.host_write(link.ep_out, b"\x05\x06\x07")  # a short one is zero-padded
    assert bytes(link.take()) == b"\x05\x06\x07" + bytes(61)
    link.rx_done()
    # IN: one report in flight, the buffer stays the loop's until it completes
    assert link.can_send()
    link.tx[0:3] = b"abc"
    assert link.send(link.tx)
    assert not link.can_send() and not link.send(link.tx)
    assert usbd.host_read(link.ep_in) == b"abc" + bytes(61)
    assert link.can_send()
    # a bus reset drops the configuration and everything in flight
    assert link.send(link.tx)
    usbd.bus_reset()
    assert not link.configured and not link.in_busy and not link.can_send()
    assert not link.send(link.tx)
    link.arm()
    assert usbd.pending(link.ep_out) is None
    usbd.configure()
    link.arm()
    assert link.can_send() and usbd.pending(link.ep_out) is not None


def test_callbacks_allocate_nothing():
    link, usbd = _link()
    link.arm()
    assert link.send(link.tx)
    itf_view = memoryview(usbd.desc_cfg)[len(usbd.BUILTIN_DEFAULT.desc_cfg) :]
    get_report_desc = memoryview(bytearray((0x81, 6, 0, 0x22, 2, 0, 0xFF, 0)))
    set_idle = memoryview(bytearray((0x21, 0x0A, 0, 8, 2, 0, 0, 0)))
    other = memoryview(bytearray((0x81, 6, 0, 0x22, 0, 0, 0xFF, 0)))
    cb = link._control_xfer_cb
    ep_in = link.ep_in
    ep_out = link.ep_out
    results = [None, None, None, None]
    st = machine.disable_irq()  # heap locked: any allocation below raises MemoryError
    try:
        usbd.complete(ep_in)  # IN done
        usbd.complete(ep_out, 64)  # OUT done
        results[0] = cb(1, get_report_desc)
        results[1] = cb(1, set_idle)
        cb(2, set_idle)
        cb(3, set_idle)
        results[2] = cb(1, other)
        link._reset_cb()
        link._open_itf_cb(itf_view)
        results[3] = link.configured
    finally:
        machine.enable_irq(st)
    assert results[0] == usbhid.REPORT_DESC and results[1] is True and results[2] is False
    assert results[3] and link._idle[0] == 8


def test_maintenance_boot_skips_the_hid_interface():
    machine.fake_reset()
    st = MemStorage()
    usbd = machine.USBDevice()
    # key 1 held at power-up
    assert usbhid.boot(st, True) is None and usbhid.MAINTENANCE and usbhid.LINK is None
    assert usbd.configs == 0 and not usbd.active()  # MicroPython's own USB: CDC only
    assert usbd.builtin_driver is usbd.BUILTIN_NONE and usbd.desc_cfg is None
    # the flag a reboot command leaves is used once
    from rpfw import board

    board.request_maintenance(st)
    assert usbhid.boot(st, False) is None and usbd.configs == 0
    link = usbhid.boot(st, False)
    assert link is usbhid.LINK and not usbhid.MAINTENANCE
    assert usbd.configs == 1 and usbd.active()
    usbd.configure()
    assert link.configured


def test_without_a_builtin_driver_the_hid_is_the_whole_configuration():
    machine.fake_reset()
    usbd = machine.USBDevice()
    link = usbhid.HidLink(usbd)
    link.build(usbd.BUILTIN_NONE)
    cfg = bytes(link.desc_cfg)
    assert [(n, t) for o, n, t in _walk(cfg)] == [(9, 2), (9, 4), (9, 0x21), (7, 5), (7, 5)]
    assert _u16(cfg, 2) == len(cfg) == 9 + usbhid.HID_BLOCK and cfg[4] == 1
    assert (link.itf, link.ep_in, link.ep_out) == (0, 0x81, 0x01)


def test_a_failed_or_stalled_out_transfer_delivers_nothing():
    # xfer_cb gets TinyUSB's result code: 0 is success (the firmware used to take a true value
    # for success, so on a real Pico no OUT report ever arrived)
    link, usbd = _link()
    link.arm()
    buf = usbd.pending(link.ep_out)
    buf[0:3] = b"\x01\x02\x03"
    usbd.complete(link.ep_out, 3, machine.XFER_FAILED)
    assert link.rx_ready == 0 and not link._out_armed
    link.arm()
    usbd.complete(link.ep_out, 64, machine.XFER_STALLED)
    assert link.rx_ready == 0
    link.arm()
    assert usbd.host_write(link.ep_out, b"\x09" * 64)  # success: result 0
    assert link.rx_ready == 64
    assert usbd.callback_errors == []


def test_usb_goes_active_on_the_usb_task_and_refuses_transfers_before():
    machine.fake_reset()
    st = MemStorage()
    link = usbhid.boot(st, False)
    usbd = machine.USBDevice()
    assert usbd.active()  # asked for; the USB task has not run yet
    try:
        usbd.submit_xfer(link.ep_in, link.tx)
        raise AssertionError("submit_xfer before the USB task ran")
    except OSError as e:
        assert e.args[0] == 22  # EINVAL
    link.configured = True  # even if the link thought it was up: no crash, no transfer
    link.arm()
    assert not link._out_armed
    assert not link.send(link.tx) and not link.in_busy
    link.configured = False
    usbd.configure()  # the USB task runs, the host configures
    link.arm()
    assert usbd.pending(link.ep_out) is not None
    try:
        usbd.submit_xfer(link.ep_out, bytearray(64))
        raise AssertionError("a second transfer on a busy endpoint")
    except OSError as e:
        assert e.args[0] == 16  # EBUSY
    try:
        usbd.submit_xfer(0, bytearray(8))
        raise AssertionError("endpoint 0")
    except ValueError:
        pass


def test_an_exception_in_a_usb_callback_never_reaches_the_loop():
    link, usbd = _link()
    link.arm()

    def broken(ep, result, n):
        raise RuntimeError("bug")

    usbd._xfer_cb = broken
    assert usbd.host_write(link.ep_out, b"x")  # kept and printed by MicroPython
    assert len(usbd.callback_errors) == 1

# The keypad's USB descriptors as the firmware builds them (rpfw.usbhid on top of MicroPython's
# built-in CDC, from the fake machine's BUILTIN_DEFAULT): the one definition the simulated USB
# bus (host/ratepad/transports/usbsim.py) enumerates with.
import machine
from rpfw import usbhid

# String descriptors MicroPython itself answers (shared/tinyusb/mp_usbd_descriptor.c:
# MICROPY_HW_USB_CDC_INTERFACE_STRING for the CDC interface, index USBD_STR_CDC = 4)
BUILTIN_STRINGS = {4: "Board CDC"}


def keypad_descriptors():
    # (device descriptor, configuration descriptor, HID report descriptor, {index: string}
    # without the serial (index 3, per keypad), HID interface number, IN endpoint, OUT endpoint)
    link = usbhid.HidLink(usbd=machine.USBDevice())
    link.build(machine.USBDevice.BUILTIN_DEFAULT)
    strings = {}
    for i in range(len(link.strs)):
        if link.strs[i] is not None:
            strings[i] = link.strs[i]
    for i in BUILTIN_STRINGS:
        strings[i] = BUILTIN_STRINGS[i]
    return (bytes(link.desc_dev), bytes(link.desc_cfg), bytes(usbhid.REPORT_DESC), strings,
            link.itf, link.ep_in, link.ep_out)

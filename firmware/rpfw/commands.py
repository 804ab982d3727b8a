# Host commands: what the keypad does with each message from the host (ACK, time sync, host_hello,
# prompts, staff log-in/out, settings, self-test, reboot, key events), and its reply.
from rpfw import codec
from rpfw.settings import NAMES


def frame_in(core, rx, n, now):
    # One frame from the host (rx[:n], without its delimiter): decode, then act on it.
    try:
        type_id, seq, hflags, payload = codec.unframe(rx, n)
    except ValueError:
        return  # damaged frame: the host repeats what matters
    try:
        v = codec.decode_payload(type_id, payload)
    except (ValueError, IndexError, UnicodeError):
        core._reply(seq, codec.RESULT_CODE_BAD_REQUEST, b"malformed payload")
        return
    if v is None:
        core._reply(seq, codec.RESULT_CODE_UNSUPPORTED, b"unknown message type")
        return
    dispatch(core, type_id, seq, v, now)


def dispatch(core, t, seq, v, now):
    # Act on host message type `t` (decoded fields v, request seq) and reply.
    r = core.rules
    ok = codec.RESULT_CODE_OK
    if t == codec.T_ACK:
        try:
            moved = core.journal.ack(v[0])
        except OSError:
            # flash write failed: the ACK is not persisted (the journal keeps its old ACK
            # point, so those ratings are sent again later: stored once by the host)
            core.storage_error = True
            core._status_due = True
            return
        if moved:
            core.ack_moved(now)
        return
    if t == codec.T_TIME_SYNC:
        first = not core.synced
        core.synced = True
        core._sync_epoch = v[0]
        core._sync_uptime = core.uptime
        if first:
            core._status_due = True
        return
    if t == codec.T_HOST_HELLO:
        core.session = True
        core.link.restart(core.journal.ack_seq)
        core._push_hello(codec.HF_RESPONSE)
        core._status_due = True
        if v[0] != codec.PROTOCOL_VERSION:
            core._reply(seq, codec.RESULT_CODE_DENIED, b"protocol version")
        return
    if t == codec.T_PROMPT:
        if core.journal.full():
            core._reply(seq, codec.RESULT_CODE_FAILED, b"journal full")
            return
        r.arm(v[0], v[2].encode(), v[1], now)
    elif t == codec.T_CANCEL_PROMPT:
        if not r.cancel(v[0]):
            core._reply(seq, codec.RESULT_CODE_NOT_FOUND, b"no such prompt")
            return
    elif t == codec.T_LOGIN:
        r.login(v[0].encode(), v[1].encode())
    elif t == codec.T_LOGOUT:
        if not r.logout(v[0].encode()):
            core._reply(seq, codec.RESULT_CODE_NOT_FOUND, b"not logged in")
            return
    elif t == codec.T_GET_CONFIG:
        if not _get_config(core, seq, v[0]):
            return
    elif t == codec.T_SET_CONFIG:
        try:
            at_boot = core.settings.set(v[0], v[1])
        except ValueError as e:
            core._reply(seq, codec.RESULT_CODE_BAD_VALUE, str(e).encode())
            return
        except OSError:
            core._reply(seq, codec.RESULT_CODE_FAILED, b"flash write failed")
            return
        if at_boot:
            core._reply(seq, ok, b"applies after a reboot")
            return
        core._apply_settings()
    elif t == codec.T_SELF_TEST:
        core.led_walk(now)
        failed = core.hw.self_test()
        if core.journal.corrupt or core.storage_error:
            failed = (failed + " journal").strip()
        if failed:
            core._reply(seq, codec.RESULT_CODE_FAILED, failed.encode())
            return
    elif t == codec.T_REBOOT:
        core.reboot_mode = v[0]
    elif t == codec.T_KEY_EVENTS:
        core.key_events = bool(v[0])
    else:
        core._reply(seq, codec.RESULT_CODE_UNSUPPORTED, b"not for the keypad")
        return
    core._reply(seq, ok)
    core._status_due = True

def _get_config(core, seq, key):
    names = NAMES if key == "" else (key,)
    for name in names:
        try:
            text = core.settings.text(name)
        except ValueError:
            core._reply(seq, codec.RESULT_CODE_NOT_FOUND, b"unknown setting")
            return False
        n = codec.config_value_into(core._frame, core._next_seq(), codec.HF_RESPONSE, seq,
                                    name.encode(), text.encode())
        core._push(n)
    return True

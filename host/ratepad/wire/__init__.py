"""The wire protocol on the host: the generated codec, the stream decoder and the link session.

``ratepad.wire.codec`` is generated from the protocol definition (never edit it);
``ratepad.wire.stream.StreamDecoder`` turns a byte stream into frames and bad spans;
``ratepad.wire.session.Session`` is the sans-IO link session every transport shares (bytes in,
events out, bytes to send back). The events the session produces live one level up, in
``ratepad.events``, which itself builds on the codec: this package therefore imports nothing
eagerly.
"""

"""The stream protocols /vac/cas/1.0.0 and /vac/ns/1.0.0: framing, codecs, handlers, clients."""

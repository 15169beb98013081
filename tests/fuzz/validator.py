"""py-libp2p's IPNSValidator steps, which the record and NS targets also instrument: the record's
structure is judged there, so its branches are what tells one record input from another."""

from libp2p.records.ipns import IPNSValidator

VALIDATOR_STEPS = tuple(
    getattr(IPNSValidator, step)
    for step in (
        "_validate_internal",
        "_extract_public_key",
        "_decode_cbor_data",
        "_validate_cbor_structure",
        "_validate_v1_v2_consistency",
        "_parse_rfc3339",
    )
)

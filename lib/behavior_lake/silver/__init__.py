"""Silver: typed, deduplicated, consented, pseudonymized, identity-stitched events."""

"""Bronze: raw landed events, every line accounted for."""

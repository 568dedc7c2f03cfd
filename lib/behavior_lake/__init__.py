"""behavior-lake."""

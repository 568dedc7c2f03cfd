"""Real-time activation: the stream, rules engine, Redis cache, decision API and webhooks."""

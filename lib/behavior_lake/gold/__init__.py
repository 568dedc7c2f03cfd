"""Gold: features, KPIs, cohorts, funnels, paths (built from silver)."""

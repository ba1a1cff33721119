"""Cross-border analysis: bundled borders, crossings, hotspots, corridors."""

"""Verra VCS VM0047 Afforestation, Reforestation and Revegetation (area-based approach)."""

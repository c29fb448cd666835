"""Gold Standard "Methodology for Metered & Measured Energy Cooking Devices" (MECD)."""

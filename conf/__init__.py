"""Hydra reads the configs of an installed lorabench as this package's resources (bench.conf)."""

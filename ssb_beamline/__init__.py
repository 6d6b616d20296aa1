"""Live X-ray spectro-microscopy of solid-state battery cathodes.

Acquire Ni K-edge XANES scans on a transmission X-ray microscope with bluesky,
analyse them while they run, and keep raw data and results in tiled.
"""

__version__ = "0.1.0"

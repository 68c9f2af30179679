"""Image geometry and intensities: canonical reorientation and slicing, intensity
normalisation, resizing slices to and from a model's size, and the filter mask."""

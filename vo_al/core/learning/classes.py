"""The method's three classes (paper Sect. 2.1): their indices and names; the targets are the emission classes."""

CLASS_NAMES = ("non-target", "single peak", "double peak")
# class indices; the two emission classes are the targets
NON_TARGET, SINGLE_PEAK, DOUBLE_PEAK = 0, 1, 2
TARGET_CLASSES = (SINGLE_PEAK, DOUBLE_PEAK)
N_CLASSES = len(CLASS_NAMES)

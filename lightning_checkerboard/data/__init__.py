"""Image data for generator training: bundled photos and digits, Hub datasets, image folders.

Example:
    >>> from lightning_checkerboard.data import ImageDataModule
    >>> ImageDataModule("digits").channels
    1
"""

from lightning_checkerboard.data.datamodule import ImageDataModule, default_cache_dir
from lightning_checkerboard.data.degradation import bicubic_upscale, check_hr_size, downscale
from lightning_checkerboard.data.errors import DatasetError
from lightning_checkerboard.data.sources import DATASET_FORMS, parse_dataset
from lightning_checkerboard.data.style import STYLE_IMAGES, load_style_image

__all__ = ["DATASET_FORMS", "STYLE_IMAGES", "DatasetError", "ImageDataModule", "bicubic_upscale", "check_hr_size",
           "default_cache_dir", "downscale", "load_style_image", "parse_dataset"]

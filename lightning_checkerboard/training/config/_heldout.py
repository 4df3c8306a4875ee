"""The ``heldout_photos`` setting that the super-resolution and autoencoder configs share."""

from __future__ import annotations

from lightning_checkerboard.data.photo_holdout import DEFAULT_HELDOUT_PHOTOS, check_heldout_photos

__all__ = ["HeldoutPhotosSetting"]


class HeldoutPhotosSetting:
    """Checks and reads a config's ``heldout_photos`` field: comma-separated names held out of ``photos``.

    A mixin for config dataclasses that declare ``heldout_photos: str | None`` (``None``: the default
    pair) beside :class:`~lightning_checkerboard.training.config.run.RunConfig`'s ``dataset``.
    """

    heldout_photos: str | None
    dataset: str

    def _check_heldout_photos(self) -> None:
        """Raise ``ValueError`` for names that are not a string, a dataset other than ``photos``, or unknown names."""
        if self.heldout_photos is None:
            return
        if not isinstance(self.heldout_photos, str):
            raise ValueError(f"heldout_photos must be comma-separated names or None; got {self.heldout_photos!r}.")
        if self.dataset != "photos":
            raise ValueError(f"heldout_photos: whole photographs are held out of the photos dataset only; "
                             f"the dataset is {self.dataset!r}.")
        check_heldout_photos(self.heldout_photo_names(), "heldout_photos")

    def heldout_photo_names(self) -> tuple[str, ...]:
        """The photographs held out of ``photos``, as a tuple of names."""
        if self.heldout_photos is None:
            return DEFAULT_HELDOUT_PHOTOS
        return tuple(name.strip() for name in self.heldout_photos.split(","))

"""The exception and warning classes of :mod:`sk_template.datasets`, defined once."""

__all__ = ["CacheWarning", "ImageDecodeError", "SkippedImagesWarning"]


class ImageDecodeError(ValueError):
    """An image file that cannot be read or decoded.

    Raised for empty, truncated or corrupt files, files that are not images at
    all, and images whose pixel format cannot be converted to 8 bits per sample.

    Parameters
    ----------
    path : str
        The file that could not be read.
    reason : str
        Why, in words.

    Attributes
    ----------
    path : str
        The file that could not be read.
    reason : str
        Why, in words.

    Examples
    --------
    >>> from sk_template.datasets import ImageDecodeError
    >>> err = ImageDecodeError("digits/3/0.png", "empty file (0 bytes)")
    >>> err.path
    'digits/3/0.png'
    >>> isinstance(err, ValueError)
    True
    """

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"Cannot read image {self.path}: {reason}. Fix or delete the file, or "
            "pass on_error='skip' to leave unreadable files out with a warning."
        )

    def __reduce__(self):
        return type(self), (self.path, self.reason)


class SkippedImagesWarning(UserWarning):
    """Some image files could not be read and were left out (``on_error="skip"``).

    Examples
    --------
    >>> from sk_template.datasets import SkippedImagesWarning
    >>> issubclass(SkippedImagesWarning, UserWarning)
    True
    """


class CacheWarning(UserWarning):
    """The on-disk cache of decoded images was unreadable or could not be written.

    The images are decoded again from the files, so the result is still right;
    only the time is lost.

    Examples
    --------
    >>> from sk_template.datasets import CacheWarning
    >>> issubclass(CacheWarning, UserWarning)
    True
    """

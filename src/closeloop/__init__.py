"""closeloop: two-way CRM <-> marketing-automation sync that closes the loop from source to revenue."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("closeloop")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["__version__"]

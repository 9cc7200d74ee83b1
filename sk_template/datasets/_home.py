"""Where downloaded data sets and caches live."""

import os
from pathlib import Path

__all__ = ["get_data_home"]

DATA_HOME_ENV = "SK_TEMPLATE_DATA"


def get_data_home(data_home=None):
    """Return the folder that holds downloaded data and image caches.

    The folder is, in order of precedence: ``data_home`` when given, else the
    value of the environment variable ``SK_TEMPLATE_DATA``, else
    ``~/sk_template_data``. A ``~`` is expanded, and the folder is created when
    it does not exist yet.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use. ``None`` means: use the environment variable or the
        default.

    Returns
    -------
    data_home : str
        The path of the folder, as sklearn's own ``get_data_home`` returns it.

    Examples
    --------
    >>> import os, tempfile
    >>> from sk_template.datasets import get_data_home
    >>> tmp = tempfile.TemporaryDirectory()
    >>> home = get_data_home(os.path.join(tmp.name, "data"))
    >>> os.path.isdir(home)
    True
    >>> tmp.cleanup()
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV) or os.path.join(
            "~", "sk_template_data"
        )
    data_home = Path(data_home).expanduser()
    if data_home.exists() and not data_home.is_dir():
        raise NotADirectoryError(
            f"data_home {str(data_home)!r} is a file, not a folder. Pass another "
            f"data_home or set the {DATA_HOME_ENV} environment variable."
        )
    data_home.mkdir(parents=True, exist_ok=True)
    return str(data_home)

"""Find the classes and image files of an image folder, in a deterministic order.

Layouts: ``root/<class>/<image>`` and ``root/<split>/<class>/<image>``. Images
may sit in nested folders inside a class folder (they belong to that class).
Hidden entries (names starting with "."), non-image files, ``__MACOSX`` and
the cache's own folder are ignored. Entries named like images that are not
regular files (FIFOs, devices, sockets) are listed apart and never opened.

The rules are written once, over a *store* (see :mod:`._store`) that lists
folders: the local disk, through the functions below that walk it with
``os.scandir`` and ``os.stat``, or any fsspec file system, from one listing.
"""

import hashlib
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_IFBLK, S_IFCHR, S_IFIFO, S_IFMT, S_IFSOCK, S_ISDIR, S_ISREG

import numpy as np

from ._cache import CACHE_DIRNAME

IMAGE_EXTENSIONS = frozenset(
    {
        ".bmp",
        ".gif",
        ".jpeg",
        ".jpg",
        ".pgm",
        ".png",
        ".ppm",
        ".tif",
        ".tiff",
        ".webp",
    }
)
# Folders that are never classes: what archivers leave behind, and the cache
# of load_image_folder (a data_home inside the image folder puts it there).
_IGNORED_DIRS = frozenset({"__MACOSX", CACHE_DIRNAME})
_DIGITS = re.compile(r"([0-9]+)")
_INTEGER = re.compile(r"-?[0-9]+")
_STAT_AT = os.stat in os.supports_dir_fd and os.listdir in os.supports_fd


def natural_key(text):
    """Sort key that orders the digit runs of ``text`` by value: "2" < "10".

    Letters compare case-insensitively; the text itself breaks ties, so the
    order is total and deterministic.
    """
    parts = _DIGITS.split(text)
    parts[1::2] = map(int, parts[1::2])
    parts[0::2] = [p.casefold() for p in parts[0::2]]
    return parts, text


def _path_key(relpath):
    return [natural_key(part) for part in relpath.split("/")]


def natural_sorted(relpaths):
    """``relpaths`` sorted by :func:`natural_key`, part by part of each path.

    Names that are a number and a digit-free extension ("12.png", the usual
    case) take a fast path that gives the same order as the general one: by
    the number alone when the extensions are one (case aside) and no two
    numbers are equal, else by number, extension and name.
    """
    numbers, folded = [], {}  # the extensions seen, casefolded
    add = numbers.append
    for rel in relpaths:
        stem, _, rest = rel.partition(".")
        if rest not in folded:
            if not rest or "/" in rest or _DIGITS.search(rest):
                return sorted(relpaths, key=_path_key)
            folded[rest] = ("." + rest).casefold()
        if not (stem.isascii() and stem.isdigit()):
            return sorted(relpaths, key=_path_key)
        add(int(stem))
    if len(set(folded.values())) <= 1 and len(set(numbers)) == len(numbers):
        order = sorted(range(len(numbers)), key=numbers.__getitem__)
        return [relpaths[i] for i in order]
    exts = [folded[rel.partition(".")[2]] for rel in relpaths]
    keys = sorted(zip(numbers, exts, relpaths, strict=True))
    return [rel for _, _, rel in keys]


def normalize_extensions(extensions):
    """Return the set of lower-case, dotted extensions to treat as images."""
    if extensions is None:
        return IMAGE_EXTENSIONS
    if isinstance(extensions, str):
        extensions = [extensions]
    exts = set()
    for ext in extensions:
        if not isinstance(ext, str) or not ext.strip("."):
            raise ValueError(
                f"extensions must be strings such as 'png' or '.png'; got {ext!r}."
            )
        exts.add("." + ext.lower().lstrip("."))
    return frozenset(exts)


def _visible(name):
    return not name.startswith(".") and name not in _IGNORED_DIRS


def check_root(root):
    """Return ``root`` as an absolute Path, or raise a helpful error."""
    try:
        path = Path(os.fspath(root)).expanduser()
    except TypeError:
        raise TypeError(
            f"root must be a str or path-like naming a folder; got {root!r}."
        ) from None
    if not path.exists():
        raise FileNotFoundError(
            f"Image folder {str(path)!r} does not exist. Pass the folder that holds "
            "one sub-folder per class (root/<class>/<image>) or per split "
            "(root/<split>/<class>/<image>)."
        )
    if not path.is_dir():
        raise NotADirectoryError(
            f"{str(path)!r} is a file, not a folder. Pass the folder that holds the "
            "class folders (root/<class>/<image>), not an image or archive inside it."
        )
    return path.absolute()


def _subdirs(path):
    """Visible sub-folders of ``path`` (symlinks followed), as ``(name, path)``."""
    out = []
    with os.scandir(path) as it:
        for entry in it:
            if not _visible(entry.name):
                continue
            try:
                if entry.is_dir():
                    out.append((entry.name, os.path.join(path, entry.name)))
            except OSError:
                continue
    return out


def _has_images(path, exts):
    """Whether ``path`` holds image files directly (not in sub-folders)."""
    with os.scandir(path) as it:
        for entry in it:
            if _visible(entry.name) and os.path.splitext(entry.name)[1].lower() in exts:
                try:
                    if not entry.is_dir():
                        return True
                except OSError:
                    return True
    return False


class SplitRequired(ValueError):
    """``root`` holds split folders and no ``split`` was chosen; ``splits``
    names them (the command line words the fix in its own flags)."""

    def __init__(self, message, where, splits):
        super().__init__(message)
        self.where, self.splits = where, splits


def split_folders(store, root, exts):
    """Names of the folders of ``root`` that look like splits, natural order.

    A split folder holds sub-folders and no images of its own. ``root`` is in
    the split layout when it has such folders and none of its folders holds
    images directly.
    """
    splits, class_like = [], False
    for name in store.subdirs(root):
        path = store.join(root, name)
        if store.has_images(path, exts):
            class_like = True
        elif store.subdirs(path):
            splits.append(name)
    return sorted(splits, key=natural_key), class_like


def resolve_base(store, root, split, exts):
    """Return the folder of ``store`` whose sub-folders are the classes."""
    where = store.display(root)
    if split is None:
        store.check_dir(root)
        splits, class_like = split_folders(store, root, exts)
        if splits and not class_like:
            raise SplitRequired(
                f"{where!r} holds split folders {splits}, each with its own class "
                "folders (root/<split>/<class>/<image>). Choose one with split=, "
                f"e.g. split={splits[0]!r}.",
                where,
                splits,
            )
        return root
    if not isinstance(split, str) or not split or split.startswith("."):
        raise ValueError(
            f"split must be the name of a folder inside root, such as 'train'; "
            f"got {split!r}."
        )
    base = store.join(root, split)
    if not store.is_dir(base):
        store.check_dir(root)
        splits, class_like = split_folders(store, root, exts)
        if splits and not class_like:
            hint = f"the splits there are {splits}."
        else:
            hint = (
                "it has no split folders: it looks like root/<class>/<image>, so "
                "leave split=None."
            )
        raise ValueError(f"Split {split!r} not found in {where!r}; {hint}")
    if store.has_images(base, exts):
        raise ValueError(
            f"split={split!r} names {store.display(base)!r}, which holds images "
            f"directly: it is a class folder, not a split. Load {where!r} with "
            "split=None."
        )
    return base


def _labels_for(names):
    """Class labels for folder names: ints when every name is an integer."""
    if names and all(_INTEGER.fullmatch(n) for n in names):
        ints = [int(n) for n in names]
        if len(set(ints)) == len(ints):
            return ints
    return list(names)


def _select_classes(names, labels, classes, base):
    """Pick and order the class folders named (or labelled) by ``classes``."""
    if isinstance(classes, str | bytes) or not hasattr(classes, "__iter__"):
        raise TypeError(
            f"classes must be a list of class folder names or labels; got {classes!r}."
        )
    by_name = {name: i for i, name in enumerate(names)}
    by_label = {lab: i for i, lab in enumerate(labels) if not isinstance(lab, str)}
    picked = []
    for c in classes:
        if isinstance(c, np.generic):
            c = c.item()
        if isinstance(c, str) and c in by_name:
            i = by_name[c]
        elif (
            isinstance(c, numbers.Integral)
            and not isinstance(c, bool)
            and (c in by_label or str(c) in by_name)
        ):
            i = by_label.get(c, by_name.get(str(c)))
        else:
            raise ValueError(
                f"Class {c!r} not found in {base!r}; the class folders there "
                f"are {names}."
            )
        if i in picked:
            raise ValueError(f"Class {c!r} is listed twice in classes={classes!r}.")
        picked.append(i)
    if not picked:
        raise ValueError("classes must name at least one class folder; got [].")
    return [names[i] for i in picked]


def _ordered_class_names(store, base, exts):
    names = store.subdirs(base)
    where = store.display(base)
    if not names:
        if store.has_images(base, exts):
            raise ValueError(
                f"{where!r} holds images directly but no class folders. Put each "
                f"class's images in a folder of its own: {where!r}/<class>/<image>."
            )
        raise ValueError(
            f"No class folders found in {where!r}: it is empty. Expected "
            "root/<class>/<image> or root/<split>/<class>/<image>."
        )
    labels = _labels_for(names)
    order = sorted(
        range(len(names)),
        key=(lambda i: labels[i])
        if isinstance(labels[0], int)
        else (lambda i: natural_key(names[i])),
    )
    return [names[i] for i in order]


# What a listed entry is when it is not a regular file (after following links).
_SPECIAL_KINDS = {
    S_IFIFO: "a named pipe (FIFO)",
    S_IFSOCK: "a socket",
    S_IFCHR: "a character device",
    S_IFBLK: "a block device",
}


def _special(mode):
    """Why a file of ``mode`` (not a regular file or a folder) is not read."""
    kind = _SPECIAL_KINDS.get(S_IFMT(mode), "something")
    return f"{kind}, not a regular file: never opened"


def special_file(path):
    """Why ``path`` (links followed) must not be opened, or None.

    A reason for FIFOs, devices and sockets; None for regular files and
    folders, and for paths that cannot be stat'ed (opening them fails fast).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if S_ISREG(mode) or S_ISDIR(mode) else _special(mode)


def _scan_class(class_dir, exts, with_stat):
    """Image files under ``class_dir``: relative paths, stat stamps, special files.

    Sub-folders are followed (symlinks too); a link that leads back to a
    folder being walked is an error rather than an endless walk. Order is the
    file system's. Returns ``(rels, stamps, special)``: ``stamps`` holds the
    lists of sizes, mtimes, ctimes and inodes of ``rels`` (with ``with_stat``;
    -1 for entries that cannot be stat'ed, broken links, which then fail to
    decode with an error naming them), and ``special`` the ``(relpath,
    reason)`` of entries with an image's name that are not regular files
    (FIFOs, devices, sockets): they are listed, never opened, since opening
    one can block forever.
    """
    rels, special = [], []
    sizes, mtimes, ctimes, inodes = [], [], [], []
    # These loops run once per file and are most of a cached load's time:
    # names are checked with str.endswith, several times cheaper than slicing
    # the extension out and looking it up.
    add_rel, add_size, add_mtime = rels.append, sizes.append, mtimes.append
    add_ctime, add_inode = ctimes.append, inodes.append
    suffixes = tuple(exts)

    def add_broken(name):
        """An image's name that cannot be stat'ed (a broken link): listed, so
        that it fails to decode with an error naming it."""
        add_rel(name)
        if with_stat:
            add_size(-1)
            add_mtime(-1)
            add_ctime(-1)
            add_inode(0)

    def list_with_stat(path, subdirs):
        """One stat (following links) of each entry, by name in an open folder."""
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        stat_at = os.stat
        try:
            for name in os.listdir(fd):
                if name[0] == ".":
                    continue
                try:
                    st = stat_at(name, dir_fd=fd)
                except OSError:
                    if name.endswith(suffixes) or name.lower().endswith(suffixes):
                        add_broken(name)
                    continue
                mode = st.st_mode
                if S_ISREG(mode):
                    if name.endswith(suffixes) or name.lower().endswith(suffixes):
                        add_rel(name)
                        add_size(st.st_size)
                        add_mtime(st.st_mtime_ns)
                        add_ctime(st.st_ctime_ns)
                        add_inode(st.st_ino)
                elif S_ISDIR(mode):
                    if name not in _IGNORED_DIRS:
                        subdirs.append(name)
                elif name.endswith(suffixes) or name.lower().endswith(suffixes):
                    special.append((name, _special(mode)))
        finally:
            os.close(fd)

    def list_names(path, subdirs):
        """The file system's file types, without a stat of regular files."""
        with os.scandir(path) as it:
            for entry in it:
                name = entry.name
                if name[0] == ".":
                    continue
                try:
                    if entry.is_file():  # most entries: one call, no stat
                        if name.endswith(suffixes) or name.lower().endswith(suffixes):
                            add_rel(name)
                            if with_stat:  # where os.stat takes no dir_fd
                                st = entry.stat()
                                add_size(st.st_size)
                                add_mtime(st.st_mtime_ns)
                                add_ctime(st.st_ctime_ns)
                                add_inode(st.st_ino)
                    elif entry.is_dir():
                        if name not in _IGNORED_DIRS:
                            subdirs.append(name)
                    elif name.endswith(suffixes) or name.lower().endswith(suffixes):
                        special.append((name, _special(entry.stat().st_mode)))
                except OSError:  # a broken link (is_file is False) or a loop
                    if name.endswith(suffixes) or name.lower().endswith(suffixes):
                        add_broken(name)

    def walk(path, prefix, ancestors):
        subdirs = []
        n_rels, n_special = len(rels), len(special)
        if with_stat and _STAT_AT:
            list_with_stat(path, subdirs)
        else:
            list_names(path, subdirs)
        if prefix:  # names in a nested folder: relative to the class folder
            rels[n_rels:] = [prefix + name for name in rels[n_rels:]]
            special[n_special:] = [(prefix + n, why) for n, why in special[n_special:]]
        for name in subdirs:
            sub = os.path.join(path, name)
            st = os.stat(sub)
            ident = (st.st_dev, st.st_ino)
            if ident in ancestors:
                raise ValueError(
                    f"Symbolic link loop: {sub!r} leads back to {ancestors[ident]!r}, "
                    "a folder that contains it. Remove the link or point it elsewhere."
                )
            walk(sub, f"{prefix}{name}/", {**ancestors, ident: sub})

    st = os.stat(class_dir)
    walk(class_dir, "", {(st.st_dev, st.st_ino): class_dir})
    return rels, (sizes, mtimes, ctimes, inodes), special


@dataclass
class Listing:
    """The classes and image files of one image folder (or one split of it).

    ``rels[k]`` lists class ``k``'s files in file-system order and
    ``stamps[k]`` their sizes, mtimes, ctimes and inodes (when listed with
    ``stat=True``; for a folder in another store, their sizes, versions and
    modified times as it lists them); :meth:`ordered` gives the
    deterministic order.
    ``special`` holds ``(relpath, reason)`` of the entries named like images
    that are not regular files (FIFOs, devices, sockets), which are not in
    ``rels``: they are bad files, never opened.
    """

    base: Path | str  # a Path on the local disk, else the store's path
    class_dirs: list
    target_names: np.ndarray
    rels: list
    stamps: list = field(default_factory=list)
    special: list = field(default_factory=list)

    @property
    def n_files(self):
        return sum(len(r) for r in self.rels)

    def fingerprint(self):
        """Digest of every file's relative path and stat stamp, and the classes.

        The stamp is the size, mtime, ctime and inode, as git's index keeps
        them: any added, removed, renamed or rewritten file changes it, even
        one rewritten with its old size and mtime put back (``cp -p``,
        ``rsync -t``, ``tar x``), since that sets the ctime, which no user
        tool can set back. It follows the file-system order, which only
        changes when the folder does.
        """
        h = hashlib.blake2b(digest_size=20)
        for cdir, rels, stamps in zip(
            self.class_dirs, self.rels, self.stamps, strict=True
        ):
            # os.fsencode: the bytes of the names, undecodable ones included
            # (os.fsdecode made them lone surrogates).
            h.update(os.fsencode(f"\0class\0{cdir}\0{len(rels)}\0"))
            h.update(os.fsencode("\0".join(rels)))
            # Python's 64-bit hash of a tuple of ints is the same in every
            # process (only str and bytes hashes are salted) and several times
            # cheaper than converting the column to an array, and this runs
            # once per file per load; a change goes unseen with odds of 2**-64.
            # Columns of strings (a store's ETags, modified times) are hashed
            # as their bytes.
            for column in stamps:
                if column and isinstance(column[0], str):
                    h.update("\0".join(column).encode("utf-8", "surrogatepass"))
                else:
                    h.update(hash(tuple(column)).to_bytes(8, "little", signed=True))
        for rel, _ in self.special:
            h.update(os.fsencode(f"\0special\0{rel}"))
        return h.hexdigest()

    def ordered(self):
        """Relative paths (``class/...``) in class then natural file order.

        Returns the list of paths and the int32 array of class indices.
        """
        relpaths, codes = [], []
        for k, (cdir, rels) in enumerate(zip(self.class_dirs, self.rels, strict=True)):
            relpaths.extend(f"{cdir}/{r}" for r in natural_sorted(rels))
            codes.append(np.full(len(rels), k, dtype=np.int32))
        return relpaths, np.concatenate(codes)


def _store_of(root, store):
    if store is not None:
        return store, root
    from ._store import open_store  # which imports this module

    return open_store(root)


def discover(
    root,
    *,
    split=None,
    classes=None,
    allow_empty=False,
    extensions=None,
    stat=True,
    store=None,
):
    """List the classes and image files of ``root`` (see module docstring):
    a path, or with ``store`` (see :mod:`._store`) the store's path of it."""
    store, root = _store_of(root, store)
    exts = normalize_extensions(extensions)
    base = resolve_base(store, root, split, exts)
    names = _ordered_class_names(store, base, exts)
    if classes is not None:
        names = _select_classes(names, _labels_for(names), classes, store.display(base))
    kept, all_rels, all_stamps, all_special = [], [], [], []
    for name in names:
        class_dir = store.join(base, name)
        rels, stamps, special = store.scan(class_dir, exts, stat)
        if not rels and not special:
            if allow_empty:
                continue
            raise ValueError(
                f"Class folder {store.display(class_dir)!r} has no images (looked "
                f"for {', '.join(sorted(exts))}). Add images, remove the folder, or "
                "pass allow_empty=True to skip empty class folders."
            )
        kept.append(name)
        all_rels.append(rels)
        all_stamps.append(stamps)
        all_special.extend((f"{name}/{rel}", reason) for rel, reason in special)
    if not kept:
        raise ValueError(
            f"No images found in any class folder of {store.display(base)!r} "
            f"(looked for {', '.join(sorted(exts))})."
        )
    return Listing(
        base=base,
        class_dirs=kept,
        target_names=np.asarray(_labels_for(kept)),
        rels=all_rels,
        stamps=all_stamps,
        special=all_special,
    )


def list_class_names(root, *, split=None, extensions=None, store=None):
    """Class labels of ``root`` without listing the files."""
    store, root = _store_of(root, store)
    exts = normalize_extensions(extensions)
    base = resolve_base(store, root, split, exts)
    return np.asarray(_labels_for(_ordered_class_names(store, base, exts)))

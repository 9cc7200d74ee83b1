"""Find the classes and image files of an image folder, in a deterministic order.

Layouts: ``root/<class>/<image>`` and ``root/<split>/<class>/<image>``. Images
may sit in nested folders inside a class folder (they belong to that class).
Hidden entries (names starting with ".") and non-image files are ignored.
"""

import hashlib
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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
# Folders that archivers leave behind and that are never classes.
_IGNORED_DIRS = frozenset({"__MACOSX"})
_DIGITS = re.compile(r"([0-9]+)")
_INTEGER = re.compile(r"-?[0-9]+")
_SCANDIR_FD = os.scandir in os.supports_fd


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
    case) take a fast path that gives the same order as the general one.
    """
    keys, plain_rest = [], {}
    for rel in relpaths:
        stem, dot, rest = rel.partition(".")
        rest = dot + rest
        plain = plain_rest.get(rest)
        if plain is None:
            plain = plain_rest[rest] = "/" not in rest and not _DIGITS.search(rest)
        if not (plain and stem.isascii() and stem.isdigit()):
            return sorted(relpaths, key=_path_key)
        keys.append((int(stem), rest.casefold(), rel))
    keys.sort()
    return [k[2] for k in keys]


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


def split_folders(root, exts):
    """Names of the folders of ``root`` that look like splits, natural order.

    A split folder holds sub-folders and no images of its own. ``root`` is in
    the split layout when it has such folders and none of its folders holds
    images directly.
    """
    splits, class_like = [], False
    for name, path in _subdirs(root):
        if _has_images(path, exts):
            class_like = True
        elif _subdirs(path):
            splits.append(name)
    return sorted(splits, key=natural_key), class_like


def resolve_base(root, split, exts):
    """Return the folder whose sub-folders are the classes."""
    root = check_root(root)
    if split is None:
        splits, class_like = split_folders(root, exts)
        if splits and not class_like:
            raise ValueError(
                f"{str(root)!r} holds split folders {splits}, each with its own class "
                "folders (root/<split>/<class>/<image>). Choose one with split=, "
                f"e.g. split={splits[0]!r}."
            )
        return root
    if not isinstance(split, str) or not split or split.startswith("."):
        raise ValueError(
            f"split must be the name of a folder inside root, such as 'train'; "
            f"got {split!r}."
        )
    base = root / split
    if not base.is_dir():
        splits, class_like = split_folders(root, exts)
        if splits and not class_like:
            hint = f"the splits there are {splits}."
        else:
            hint = (
                "it has no split folders: it looks like root/<class>/<image>, so "
                "leave split=None."
            )
        raise ValueError(f"Split {split!r} not found in {str(root)!r}; {hint}")
    if _has_images(base, exts):
        raise ValueError(
            f"split={split!r} names {str(base)!r}, which holds images directly: it is "
            f"a class folder, not a split. Load {str(root)!r} with split=None."
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
                f"Class {c!r} not found in {str(base)!r}; the class folders there "
                f"are {names}."
            )
        if i in picked:
            raise ValueError(f"Class {c!r} is listed twice in classes={classes!r}.")
        picked.append(i)
    if not picked:
        raise ValueError("classes must name at least one class folder; got [].")
    return [names[i] for i in picked]


def _ordered_class_names(base, exts):
    names = [name for name, _ in _subdirs(base)]
    if not names:
        if _has_images(base, exts):
            raise ValueError(
                f"{str(base)!r} holds images directly but no class folders. Put each "
                f"class's images in a folder of its own: {str(base)!r}/<class>/<image>."
            )
        raise ValueError(
            f"No class folders found in {str(base)!r}: it is empty. Expected "
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


def _scan_class(class_dir, exts, with_stat):
    """Image files under ``class_dir``: lists of relative paths, sizes, mtimes.

    Sub-folders are followed (symlinks too); a link that leads back to a
    folder being walked is an error rather than an endless walk. Order is the
    file system's; sizes and mtimes are -1 for entries that cannot be stat'ed
    (broken links), which then fail to decode with an error naming them.
    """
    rels, sizes, mtimes = [], [], []
    # This loop runs once per file and is most of a cached load's time.
    add_rel, add_size, add_mtime = rels.append, sizes.append, mtimes.append

    def walk(path, prefix, ancestors):
        fd = None
        if _SCANDIR_FD:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        subdirs = []
        try:
            with os.scandir(fd if fd is not None else path) as it:
                for entry in it:
                    name = entry.name
                    if name[0] == ".":
                        continue
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        is_dir = False
                    if is_dir:
                        if name not in _IGNORED_DIRS:
                            subdirs.append(name)
                        continue
                    ext = name[name.rfind(".") :]
                    if ext not in exts and ext.lower() not in exts:
                        continue
                    add_rel(prefix + name)
                    if with_stat:
                        try:
                            st = entry.stat()
                        except OSError:
                            add_size(-1)
                            add_mtime(-1)
                        else:
                            add_size(st.st_size)
                            add_mtime(st.st_mtime_ns)
        finally:
            if fd is not None:
                os.close(fd)
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
    return rels, sizes, mtimes


@dataclass
class Listing:
    """The classes and image files of one image folder (or one split of it).

    ``rels[k]``, ``sizes[k]`` and ``mtimes[k]`` list class ``k``'s files in
    file-system order; :meth:`ordered` gives the deterministic order.
    """

    base: Path
    class_dirs: list
    target_names: np.ndarray
    rels: list
    sizes: list = field(default_factory=list)
    mtimes: list = field(default_factory=list)

    @property
    def n_files(self):
        return sum(len(r) for r in self.rels)

    def fingerprint(self):
        """Digest of every file's relative path, size and mtime, and the classes.

        Any added, removed, renamed or rewritten file changes it. It follows
        the file-system order, which only changes when the folder does.
        """
        h = hashlib.blake2b(digest_size=20)
        for cdir, rels, sizes, mtimes in zip(
            self.class_dirs, self.rels, self.sizes, self.mtimes, strict=True
        ):
            h.update(f"\0class\0{cdir}\0{len(rels)}\0".encode())
            h.update("\0".join(rels).encode("utf-8", "surrogateescape"))
            h.update(np.asarray(sizes, dtype=np.int64).tobytes())
            h.update(np.asarray(mtimes, dtype=np.int64).tobytes())
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


def discover(
    root, *, split=None, classes=None, allow_empty=False, extensions=None, stat=True
):
    """List the classes and image files of ``root`` (see module docstring)."""
    exts = normalize_extensions(extensions)
    base = resolve_base(root, split, exts)
    names = _ordered_class_names(base, exts)
    if classes is not None:
        names = _select_classes(names, _labels_for(names), classes, base)
    kept, all_rels, all_sizes, all_mtimes = [], [], [], []
    for name in names:
        rels, sizes, mtimes = _scan_class(os.path.join(base, name), exts, stat)
        if not rels:
            if allow_empty:
                continue
            raise ValueError(
                f"Class folder {os.path.join(base, name)!r} has no images (looked for "
                f"{', '.join(sorted(exts))}). Add images, remove the folder, or pass "
                "allow_empty=True to skip empty class folders."
            )
        kept.append(name)
        all_rels.append(rels)
        all_sizes.append(sizes)
        all_mtimes.append(mtimes)
    if not kept:
        raise ValueError(
            f"No images found in any class folder of {str(base)!r} (looked for "
            f"{', '.join(sorted(exts))})."
        )
    return Listing(
        base=base,
        class_dirs=kept,
        target_names=np.asarray(_labels_for(kept)),
        rels=all_rels,
        sizes=all_sizes,
        mtimes=all_mtimes,
    )


def list_class_names(root, *, split=None, extensions=None):
    """Class labels of ``root`` without listing the files."""
    exts = normalize_extensions(extensions)
    base = resolve_base(root, split, exts)
    return np.asarray(_labels_for(_ordered_class_names(base, exts)))

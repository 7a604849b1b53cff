#!/usr/bin/env python3
"""Convert a PyTorch legacy (pre-zip) state dict to safetensors, standard library only.

    python3 models/convert_legacy_pt.py IN.pt OUT.safetensors

No torch and no numpy: the legacy format is a run of pickles in one file --

  1. a magic number, 2. the protocol version, 3. sys_info (endianness, type sizes),
  4. the pickled object (here a state dict whose tensors are reduced through
     ``torch._utils._rebuild_tensor_v2`` and whose storages are persistent ids
     ``('storage', storage_type, key, location, numel)``),
  5. a pickled list of storage keys,

then, for each key in that order, an 8-byte little-endian element count and the
storage's raw little-endian bytes. A restricted Unpickler maps the few torch and
collections names the state dict uses to small local stand-ins, refusing every
other global, so no code from the file runs. Tensors may be strided views of
their storage (facenet-pytorch's weights are column-major); they are gathered
into row-major order and written as safetensors by hand: an 8-byte little-endian
header length, a JSON header (dtype, shape, data_offsets), then the raw data.
"""

import collections
import json
import pickle
import struct
import sys

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# storage class name -> (safetensors dtype, element size, struct code)
STORAGE_TYPES = {
    "FloatStorage": ("F32", 4, "f"),
    "DoubleStorage": ("F64", 8, "d"),
    "HalfStorage": ("F16", 2, "e"),
    "LongStorage": ("I64", 8, "q"),
    "IntStorage": ("I32", 4, "i"),
    "ShortStorage": ("I16", 2, "h"),
    "CharStorage": ("I8", 1, "b"),
    "ByteStorage": ("U8", 1, "B"),
    "BoolStorage": ("BOOL", 1, "?"),
}


class StorageType:
    """Stands in for ``torch.FloatStorage`` and friends: only its name matters."""

    def __init__(self, name):
        self.name = name


class StorageRef:
    """A storage named by a persistent id; its bytes come after the pickles."""

    def __init__(self, storage_type, key, numel):
        if storage_type.name not in STORAGE_TYPES:
            raise ValueError(f"unsupported storage type {storage_type.name}")
        self.dtype, self.itemsize, self.code = STORAGE_TYPES[storage_type.name]
        self.key = key
        self.numel = numel
        self.data = None


class TensorRef:
    """A strided view of a storage, as ``_rebuild_tensor_v2`` describes it."""

    def __init__(self, storage, offset, shape, stride):
        self.storage = storage
        self.offset = offset
        self.shape = tuple(shape)
        self.stride = tuple(stride)

    def contiguous_bytes(self):
        """The tensor's elements in row-major order, as little-endian bytes."""
        size = self.storage.itemsize
        data = self.storage.data
        numel = 1
        for dim in self.shape:
            numel *= dim
        if numel == 0:
            return b""
        row_major = []
        acc = 1
        for dim in reversed(self.shape):
            row_major.append(acc)
            acc *= dim
        row_major.reverse()
        if tuple(row_major) == self.stride or numel == 1:
            start = self.offset * size
            return bytes(data[start : start + numel * size])
        out = bytearray(numel * size)
        index = [0] * len(self.shape)
        for n in range(numel):
            src = self.offset + sum(i * s for i, s in zip(index, self.stride))
            out[n * size : (n + 1) * size] = data[src * size : (src + 1) * size]
            for d in range(len(index) - 1, -1, -1):
                index[d] += 1
                if index[d] < self.shape[d]:
                    break
                index[d] = 0
        return bytes(out)


def rebuild_tensor_v2(storage, offset, shape, stride, *_rest):
    return TensorRef(storage, offset, shape, stride)


def rebuild_parameter(data, *_rest):
    return data


class LegacyUnpickler(pickle.Unpickler):
    """Resolves only the globals a legacy state dict needs; storages by key."""

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return rebuild_parameter
        if module == "torch" and name in STORAGE_TYPES:
            return StorageType(name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if key not in self.storages:
            self.storages[key] = StorageRef(storage_type, key, numel)
        return self.storages[key]


def read_legacy(path):
    """The state dict in ``path`` as an ordered dict of name -> TensorRef."""
    with open(path, "rb") as f:
        magic = pickle.load(f)
        if magic != LEGACY_MAGIC:
            raise ValueError(f"{path}: not a legacy torch file (zip format or other)")
        protocol = pickle.load(f)
        if protocol != 1001:
            raise ValueError(f"{path}: unsupported legacy protocol {protocol}")
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", False):
            raise ValueError(f"{path}: big-endian files are not supported")
        storages = {}
        state = LegacyUnpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            storage = storages[key]
            nbytes = numel * storage.itemsize
            storage.data = f.read(nbytes)
            if len(storage.data) != nbytes:
                raise ValueError(f"{path}: storage {key} is truncated")
    if not isinstance(state, dict):
        raise ValueError(f"{path}: the pickled object is not a state dict")
    for name, tensor in state.items():
        if not isinstance(tensor, TensorRef):
            raise ValueError(f"{path}: entry {name} is not a tensor")
        if tensor.storage.data is None:
            raise ValueError(f"{path}: storage for {name} is missing")
    return state


def write_safetensors(tensors, path):
    """Write name -> TensorRef as safetensors, tensors sorted by name."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name]
        blob = tensor.contiguous_bytes()
        header[name] = {
            "dtype": tensor.storage.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    state = read_legacy(argv[1])
    write_safetensors(state, argv[2])
    for name, tensor in state.items():
        print(f"{name}: {tensor.storage.dtype} {list(tensor.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

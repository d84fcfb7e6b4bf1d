// A restricted unpickler for PyTorch state dicts (the `data.pkl` inside a torch.save
// archive), after candle's `candle-core/src/pickle.rs`. Python's pickle is a small
// stack machine whose GLOBAL + REDUCE opcodes call any importable function, so a
// .pth file can run code when Python loads it. Here nothing is ever called: the only
// globals accepted are the few a plain tensor state dict names (OrderedDict, the
// tensor-rebuild functions, storage types), each interpreted by this file, and any
// other global or object-building opcode stops the load with an explanation.
//
// Opcodes: Python's Lib/pickletools.py. torch.save writes protocol 2.

/** A storage named by a BINPERSID record ('storage', torch.<T>Storage, key, location, numel). */
export interface StorageRef {
  readonly kind: 'storage';
  readonly storageType: string;
  readonly key: string;
  readonly numel: number;
}

/** The arguments of torch._utils._rebuild_tensor_v2: a strided view of a storage. */
export interface TensorRef {
  readonly kind: 'tensor';
  readonly storage: StorageRef;
  readonly offset: number;
  readonly size: readonly number[];
  readonly stride: readonly number[];
}

export interface PyTuple { readonly kind: 'tuple'; readonly items: readonly PyValue[] }
export interface PyList { readonly kind: 'list'; readonly items: PyValue[] }
/** dict or collections.OrderedDict, keys in insertion order. */
export interface PyDict { readonly kind: 'dict'; readonly entries: Map<string | number, PyValue> }
/** One of the allowed globals, as pushed by GLOBAL / STACK_GLOBAL. */
export interface PyGlobal { readonly kind: 'global'; readonly name: AllowedGlobal }

export type PyValue = null | boolean | number | string | PyTuple | PyList | PyDict | PyGlobal | StorageRef | TensorRef;

/** Storage classes torch.save names, with the element type each holds. */
export const STORAGE_DTYPES = {
  'torch.FloatStorage': 'F32',
  'torch.DoubleStorage': 'F64',
  'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16',
  'torch.LongStorage': 'I64',
  'torch.IntStorage': 'I32',
  'torch.ShortStorage': 'I16',
  'torch.CharStorage': 'I8',
  'torch.ByteStorage': 'U8',
  'torch.BoolStorage': 'BOOL',
} as const;

const CALLABLE_GLOBALS = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
] as const;

type AllowedGlobal = (typeof CALLABLE_GLOBALS)[number] | keyof typeof STORAGE_DTYPES;

function isAllowedGlobal(name: string): name is AllowedGlobal {
  return (CALLABLE_GLOBALS as readonly string[]).includes(name) || Object.prototype.hasOwnProperty.call(STORAGE_DTYPES, name);
}

/** A pickle this reader will not (or cannot) interpret; the message says why. */
export class PickleError extends Error {
  override readonly name = 'PickleError';
}

const REFUSAL_REASON = 'pickle files can run arbitrary code when loaded, so this reader accepts only what a plain ' +
  'tensor state dict needs (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch storage types). ' +
  'If you trust the file, load it in PyTorch and save its state_dict() as safetensors';

// Opcodes that build arbitrary objects or read external state: named in the refusal.
const REFUSED_OPCODES: Readonly<Record<number, string>> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x50: 'PERSID', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4',
};

const MARK = Symbol('mark');
type StackItem = PyValue | typeof MARK;

class ByteReader {
  pos = 0;
  constructor(private readonly bytes: Uint8Array) {}

  take(n: number): Uint8Array {
    if (n > this.bytes.length - this.pos) {
      throw new PickleError(`the pickle is truncated: ${n} bytes wanted at byte ${this.pos}, ${this.bytes.length - this.pos} left`);
    }
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  u8(): number {
    return this.take(1)[0]!;
  }

  view(n: number): DataView {
    const b = this.take(n);
    return new DataView(b.buffer, b.byteOffset, n);
  }

  /** Bytes up to (not including) the next newline, as GLOBAL's text arguments. */
  line(): string {
    const nl = this.bytes.indexOf(0x0a, this.pos);
    if (nl < 0) throw new PickleError(`the pickle is truncated: GLOBAL argument at byte ${this.pos} has no end of line`);
    const text = this.take(nl - this.pos);
    this.pos++;
    return utf8(text);
  }
}

function utf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new PickleError('the pickle holds a string that is not valid UTF-8');
  }
}

/** Run the restricted unpickler over `bytes` and return the pickled object. */
export function unpickle(bytes: Uint8Array): PyValue {
  const r = new ByteReader(bytes);
  const stack: StackItem[] = [];
  const memo = new Map<number, PyValue>();

  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined) throw new PickleError(`the pickle pops an empty stack at byte ${r.pos - 1}`);
    if (v === MARK) throw new PickleError(`the pickle uses a MARK as a value at byte ${r.pos - 1}`);
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw new PickleError(`the pickle reads an empty stack at byte ${r.pos - 1}`);
    return v;
  };
  const popMark = (): PyValue[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) throw new PickleError(`the pickle has no MARK for the opcode at byte ${r.pos - 1}`);
    const items = stack.splice(at);
    items.shift();
    return items.filter((v): v is PyValue => v !== MARK);
  };
  const getMemo = (i: number): PyValue => {
    const v = memo.get(i);
    if (v === undefined) throw new PickleError(`the pickle refers to memo entry ${i}, which was never stored`);
    return v;
  };
  const pushGlobal = (module: string, name: string): void => {
    const full = `${module}.${name}`;
    if (!isAllowedGlobal(full)) throw new PickleError(`refused: the pickle asks for the Python global "${full}"; ${REFUSAL_REASON}`);
    stack.push({ kind: 'global', name: full });
  };

  for (;;) {
    const at = r.pos;
    const op = r.u8();
    switch (op) {
      case 0x80: { // PROTO
        const version = r.u8();
        if (version < 2 || version > 5) throw new PickleError(`unsupported pickle protocol ${version}`);
        break;
      }
      case 0x95: r.take(8); break; // FRAME: a length hint only
      case 0x2e: return pop(); // STOP
      case 0x28: stack.push(MARK); break;
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(r.u8()); break; // BININT1
      case 0x4d: stack.push(r.view(2).getUint16(0, true)); break; // BININT2
      case 0x4a: stack.push(r.view(4).getInt32(0, true)); break; // BININT
      case 0x8a: stack.push(readLong(r, r.u8())); break; // LONG1
      case 0x47: stack.push(r.view(8).getFloat64(0, false)); break; // BINFLOAT (big-endian)
      case 0x58: stack.push(utf8(r.take(r.view(4).getUint32(0, true)))); break; // BINUNICODE
      case 0x8c: stack.push(utf8(r.take(r.u8()))); break; // SHORT_BINUNICODE
      case 0x8d: { // BINUNICODE8
        const n = r.view(8).getBigUint64(0, true);
        if (n > BigInt(bytes.length)) throw new PickleError(`the pickle is truncated: a ${n}-byte string at byte ${at}`);
        stack.push(utf8(r.take(Number(n))));
        break;
      }
      case 0x29: stack.push({ kind: 'tuple', items: [] }); break; // EMPTY_TUPLE
      case 0x85: stack.push({ kind: 'tuple', items: [pop()] }); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push({ kind: 'tuple', items: [a, b] }); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push({ kind: 'tuple', items: [a, b, c] }); break; } // TUPLE3
      case 0x74: stack.push({ kind: 'tuple', items: popMark() }); break; // TUPLE
      case 0x5d: stack.push({ kind: 'list', items: [] }); break; // EMPTY_LIST
      case 0x6c: stack.push({ kind: 'list', items: popMark() }); break; // LIST
      case 0x61: { const v = pop(); asList(top(), at).items.push(v); break; } // APPEND
      case 0x65: { const vs = popMark(); const list = asList(top(), at); for (const v of vs) list.items.push(v); break; } // APPENDS
      case 0x7d: stack.push({ kind: 'dict', entries: new Map() }); break; // EMPTY_DICT
      case 0x64: { const vs = popMark(); const d: PyDict = { kind: 'dict', entries: new Map() }; setItems(d, vs, at); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(); const k = pop(); setItems(asDict(top(), at), [k, v], at); break; } // SETITEM
      case 0x75: { const vs = popMark(); setItems(asDict(top(), at), vs, at); break; } // SETITEMS
      case 0x71: memo.set(r.u8(), top()); break; // BINPUT
      case 0x72: memo.set(r.view(4).getUint32(0, true), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(getMemo(r.u8())); break; // BINGET
      case 0x6a: stack.push(getMemo(r.view(4).getUint32(0, true))); break; // LONG_BINGET
      case 0x63: { const module = r.line(); pushGlobal(module, r.line()); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new PickleError(`STACK_GLOBAL at byte ${at} needs two strings`);
        pushGlobal(module, name);
        break;
      }
      case 0x51: stack.push(persistentLoad(pop(), at)); break; // BINPERSID
      case 0x52: { const args = pop(); const fn = pop(); stack.push(reduce(fn, args, at)); break; } // REDUCE
      case 0x62: { // BUILD: sets the state of the object below; only dicts (OrderedDict's _metadata) pass
        pop();
        asDict(top(), at);
        break;
      }
      default: {
        const named = REFUSED_OPCODES[op];
        if (named) throw new PickleError(`refused: the pickle uses opcode ${named} at byte ${at}, which builds arbitrary Python objects; ${REFUSAL_REASON}`);
        throw new PickleError(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at} (not used by torch.save state dicts)`);
      }
    }
  }
}

/** LONG1: a little-endian two's-complement integer of n bytes; must fit a double exactly. */
function readLong(r: ByteReader, n: number): number {
  const b = r.take(n);
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (n > 0 && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new PickleError(`the pickle holds an integer (${v}) too large for this reader`);
  }
  return Number(v);
}

function asList(v: PyValue, at: number): PyList {
  if (v === null || typeof v !== 'object' || v.kind !== 'list') throw new PickleError(`APPEND at byte ${at} on something other than a list`);
  return v;
}

function asDict(v: PyValue, at: number): PyDict {
  if (v === null || typeof v !== 'object' || v.kind !== 'dict') throw new PickleError(`the opcode at byte ${at} needs a dict on the stack`);
  return v;
}

function setItems(d: PyDict, kv: PyValue[], at: number): void {
  if (kv.length % 2 !== 0) throw new PickleError(`SETITEMS at byte ${at} has an odd number of items`);
  for (let i = 0; i < kv.length; i += 2) {
    const k = kv[i]!;
    if (typeof k !== 'string' && typeof k !== 'number') throw new PickleError(`a dict key at byte ${at} is neither a string nor a number`);
    d.entries.set(k, kv[i + 1]!);
  }
}

function tupleItems(v: PyValue, what: string, at: number): readonly PyValue[] {
  if (v === null || typeof v !== 'object' || v.kind !== 'tuple') throw new PickleError(`${what} at byte ${at} is not a tuple`);
  return v.items;
}

function isCount(v: PyValue): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function counts(v: PyValue, what: string, at: number): number[] {
  const items = tupleItems(v, what, at);
  if (!items.every(isCount)) throw new PickleError(`${what} at byte ${at} holds something other than non-negative integers`);
  return items as number[];
}

/** torch.serialization's persistent_id for a storage: ('storage', type, key, location, numel). */
function persistentLoad(pid: PyValue, at: number): StorageRef {
  const items = tupleItems(pid, 'a persistent id', at);
  const [tag, type, key, , numel] = items;
  if (items.length !== 5 || tag !== 'storage') throw new PickleError(`the persistent id at byte ${at} is not a ('storage', type, key, location, numel) record`);
  if (type === null || typeof type !== 'object' || type.kind !== 'global' || !(type.name in STORAGE_DTYPES)) {
    throw new PickleError(`the persistent id at byte ${at} does not name a torch storage type`);
  }
  if (typeof key !== 'string' || !/^[A-Za-z0-9_]+$/.test(key)) throw new PickleError(`the storage key at byte ${at} is not a simple name`);
  if (!isCount(numel ?? null)) throw new PickleError(`the storage size at byte ${at} is not a non-negative integer`);
  return { kind: 'storage', storageType: type.name, key, numel: numel as number };
}

function reduce(fn: PyValue, argsValue: PyValue, at: number): PyValue {
  if (fn === null || typeof fn !== 'object' || fn.kind !== 'global') throw new PickleError(`REDUCE at byte ${at} calls something that is not a global`);
  const args = tupleItems(argsValue, 'the REDUCE arguments', at);
  switch (fn.name) {
    case 'collections.OrderedDict':
      if (args.length !== 0) throw new PickleError(`OrderedDict at byte ${at} is built with arguments; expected OrderedDict()`);
      return { kind: 'dict', entries: new Map() };
    case 'torch._utils._rebuild_tensor_v2': {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (args.length < 6 || args.length > 7) throw new PickleError(`_rebuild_tensor_v2 at byte ${at} has ${args.length} arguments, expected 6 or 7`);
      const [storage, offset, size, stride] = args;
      if (storage === null || typeof storage !== 'object' || storage.kind !== 'storage') {
        throw new PickleError(`_rebuild_tensor_v2 at byte ${at} is not given a storage`);
      }
      if (!isCount(offset ?? null)) throw new PickleError(`_rebuild_tensor_v2 at byte ${at} has an invalid storage offset`);
      const sizes = counts(size ?? null, 'the tensor size', at);
      const strides = counts(stride ?? null, 'the tensor stride', at);
      if (sizes.length !== strides.length) throw new PickleError(`_rebuild_tensor_v2 at byte ${at} has ${sizes.length} sizes but ${strides.length} strides`);
      return { kind: 'tensor', storage, offset: offset as number, size: sizes, stride: strides };
    }
    case 'torch._utils._rebuild_parameter': {
      // (data, requires_grad, backward_hooks): a Parameter is its data here.
      const data = args[0];
      if (args.length !== 3 || data === null || typeof data !== 'object' || data.kind !== 'tensor') {
        throw new PickleError(`_rebuild_parameter at byte ${at} is not given (tensor, requires_grad, hooks)`);
      }
      return data;
    }
    default:
      throw new PickleError(`REDUCE at byte ${at} calls ${fn.name}, which is a type, not a function this reader runs`);
  }
}

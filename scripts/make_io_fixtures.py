#!/usr/bin/python3
"""Write the weight-file fixtures that test/io*.test.ts read, under test/fixtures/io/.

    /usr/bin/python3 scripts/make_io_fixtures.py            # regenerate (needs PyTorch + node)
    /usr/bin/python3 scripts/make_io_fixtures.py --read F    # print safetensors file F as JSON

Generating needs PyTorch (Debian's python3-torch) and torchvision; `--read` needs only
the Python standard library, so the tests can check files written by resnet-ts against
this independent reader.

What is written:
- resnet18 / resnet50 from torchvision with fixed, patterned weights, as torch.save(
  model.state_dict()) archives (`*.pth.br`) and as safetensors written by the writer below
  (`*.safetensors.br`), plus their eval-mode logits on a fixed 2x3x64x64 input
  (`resnet_logits.json`). Real ResNet-50 weights are 100 MB; these weights repeat a
  1031-value pattern (16 levels times a per-tensor scale), so the files brotli-compress
  to tens of kilobytes (brotli through node, as Python's standard library has none).
  BatchNorm running statistics are measured on a calibration batch (so activations stay
  in range through 50 layers) and rounded to a coarse grid.
- small.pth / small.safetensors / small_expected.json (values as float32 bits): every dtype, strided
  and offset views sharing a storage, 0-d and empty tensors.
- checkpoint.pth (a state dict nested under 'state_dict'), protocol4.pth (pickle
  protocol 4: FRAME, MEMOIZE, STACK_GLOBAL), parameter.pth (_rebuild_parameter),
  legacy.pth (pre-1.6 format, refused), whole_model.pth (a pickled nn.Module, refused),
  evil_os_system.pth (a pickle that calls os.system; refused, and the test checks that
  the command never ran).
"""
import json
import math
import os
import struct
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
OUT = os.path.join(ROOT, 'test', 'fixtures', 'io')

# The command the evil pickle would run; test/io-pth.test.ts checks this file never appears.
EVIL_MARKER = '/tmp/resnet-ts-evil-pickle-ran'


# ------------------------------------------------------- safetensors, stdlib only

FORMATS = {'F64': 'd', 'F32': 'f', 'F16': 'e', 'I64': 'q', 'I32': 'i', 'I16': 'h', 'I8': 'b', 'U8': 'B', 'BF16': 'H'}


def read_safetensors(path):
    """The safetensors format rules: header length, JSON header, data covered exactly."""
    data = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', data[:8])
    assert 8 + n <= len(data), 'header runs past the end of the file'
    header = json.loads(data[8:8 + n].decode('utf-8'))
    metadata = header.pop('__metadata__', {})
    assert all(isinstance(v, str) for v in metadata.values()), 'metadata values must be strings'
    body, end, out = data[8 + n:], 0, {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]['data_offsets']):
        begin, stop = info['data_offsets']
        assert begin == end, f'{name}: gap or overlap at {begin}'
        fmt, count = FORMATS[info['dtype']], math.prod(info['shape'])
        assert stop - begin == count * struct.calcsize(fmt), f'{name}: shape does not fit its offsets'
        values = struct.unpack(f'<{count}{fmt}', body[begin:stop])
        if info['dtype'] == 'BF16':
            values = [struct.unpack('<f', struct.pack('<I', v << 16))[0] for v in values]
        # float32 bit patterns in hex: exact, and NaN/inf survive JSON.
        bits = [struct.pack('<f', v).hex() for v in values] if info['dtype'][0] in 'FB' else list(values)
        out[name] = {'dtype': info['dtype'], 'shape': info['shape'], 'values': bits}
        end = stop
    assert end == len(body), 'bytes after the last tensor'
    return {'metadata': metadata, 'tensors': out}


if __name__ == '__main__' and len(sys.argv) == 3 and sys.argv[1] == '--read':
    json.dump(read_safetensors(sys.argv[2]), sys.stdout)
    sys.exit(0)


# ------------------------------------------------------------------ generating

import torch  # noqa: E402  (only the generator needs PyTorch)
import torchvision  # noqa: E402

DTYPE_NAMES = {torch.float64: 'F64', torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16',
               torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8', torch.uint8: 'U8'}


def safetensors_bytes(tensors, metadata=None):
    """A safetensors file as the reference writer lays it out: header padded to 8 bytes."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = metadata
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {'dtype': DTYPE_NAMES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    return struct.pack('<Q', len(text)) + text + b''.join(blobs)


def write_bytes(name, data):
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(data)


def write_brotli(name, data):
    """name.br: brotli through node's zlib (Python's standard library has no brotli)."""
    js = ("const z=require('zlib');const c=z.constants;const b=require('fs').readFileSync(0);"
          "process.stdout.write(z.brotliCompressSync(b,{params:{[c.BROTLI_PARAM_QUALITY]:9,"
          "[c.BROTLI_PARAM_LGWIN]:24,[c.BROTLI_PARAM_SIZE_HINT]:b.length}}));")
    packed = subprocess.run(['node', '-e', js], input=data, stdout=subprocess.PIPE, check=True).stdout
    write_bytes(name + '.br', packed)


def torch_save_bytes(obj, folder='archive', **kwargs):
    """torch.save output; the archive's top folder is the file's stem (torchvision's: 'resnet18-f37072fd')."""
    path = os.path.join(OUT, f'{folder}.pth')
    torch.save(obj, path, **kwargs)
    data = open(path, 'rb').read()
    os.remove(path)
    return data


def tensor_json(t):
    values = t.detach().to(torch.float32).reshape(-1).numpy()
    # str(np.float32) is the shortest decimal that reads back as the same float32.
    return {'shape': list(t.shape), 'data': [float(str(v)) for v in values]}


def write_json(name, tensors, attrs):
    with open(os.path.join(OUT, name), 'w') as f:
        json.dump({'tensors': {k: tensor_json(v) for k, v in tensors.items()}, 'attrs': attrs}, f, separators=(',', ':'))
        f.write('\n')


def write_exact_json(name, tensors, metadata):
    """Expected values as float32 bit patterns (little-endian hex): exact, inf and -0 included."""
    body = {k: {'shape': list(v.shape), 'f32le': v.detach().to(torch.float32).contiguous().numpy().tobytes().hex()}
            for k, v in tensors.items()}
    with open(os.path.join(OUT, name), 'w') as f:
        json.dump({'metadata': metadata, 'tensors': body}, f, separators=(',', ':'))
        f.write('\n')


# ------------------------------------------------------------ patterned ResNets

PERIOD = 1031  # prime, so the pattern never lines up with a channel's row length
LEVELS = torch.tensor([(k * 2654435761 >> 7) % 16 for k in range(PERIOD)], dtype=torch.float32)
PATTERN = (LEVELS - 7.5) / 7.5  # 16 values in [-1, 1], variance about 0.36


def pattern(numel, j):
    """Tensor number j of the state dict: the shared pattern, shifted per tensor."""
    return PATTERN[(torch.arange(numel, dtype=torch.int64) * 7 + j * 131) % PERIOD]


def patterned_weights(model):
    with torch.no_grad():
        for j, (name, v) in enumerate(model.state_dict().items()):
            if not v.is_floating_point():
                continue
            base = pattern(v.numel(), j).reshape(v.shape)
            if v.dim() > 1:  # conv / linear: Kaiming-uniform scale, Var = 2 / fan_in
                v.copy_(base * math.sqrt(2 / v[0].numel() / PATTERN.var().item()))
            elif name.endswith('.weight'):  # BN gamma
                v.copy_(1 + 0.25 * base)
            else:  # BN beta, fc bias (running stats are measured below)
                v.copy_(0.1 * base)
        # Each residual branch ends in a BN with a small gamma, so blocks start near the
        # identity (as zero_init_residual, arXiv:1706.02677 sec. 5.1): without it these
        # untrained 50-layer nets are chaotic and float32 rounding grows to 1e-1.
        for block in model.modules():
            if isinstance(block, torchvision.models.resnet.Bottleneck):
                block.bn3.weight.mul_(0.1)
            elif isinstance(block, torchvision.models.resnet.BasicBlock):
                block.bn2.weight.mul_(0.1)


def calibrate_batch_norm(model, x):
    """Running statistics = the statistics of a calibration batch, then coarsely rounded."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch gives its exact statistics
    model.train()
    with torch.no_grad():
        model(x)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                # Powers of sqrt(2), at least 1/16: a near-constant channel must not be blown up.
                var = torch.exp2(torch.round(2 * torch.log2(m.running_var.clamp(min=1 / 16))) / 2)
                step = var.sqrt() / 4
                m.running_var.copy_(var)
                m.running_mean.copy_(torch.round(m.running_mean / step) * step)
                m.momentum = 0.1
    model.eval()


def logits_input(n=2, c=3, h=64, w=64):
    """x[n, c, h, w] = ((31n + 17c + 7h + 3w) mod 23 - 11) / 11, the same formula as the test."""
    i = torch.arange(n).view(n, 1, 1, 1) * 31 + torch.arange(c).view(1, c, 1, 1) * 17
    i = i + torch.arange(h).view(1, 1, h, 1) * 7 + torch.arange(w).view(1, 1, 1, w) * 3
    return ((i % 23).to(torch.float32) - 11) / 11


def write_resnets():
    # Calibrated on the very input the logits are taken on, so eval-mode BN normalises it.
    calibration = logits_input()
    logits = {}
    for name in ['resnet18', 'resnet50']:
        model = getattr(torchvision.models, name)()
        patterned_weights(model)
        calibrate_batch_norm(model, calibration)
        sd = model.state_dict()
        write_brotli(f'{name}.pth', torch_save_bytes(sd, folder=f'{name}-patterned'))
        write_brotli(f'{name}.safetensors', safetensors_bytes(sd, {'format': 'pt', 'model': name}))
        with torch.no_grad():
            out = model.double()(logits_input().double())  # float64: the exact answer for these weights
        logits[name] = out
        with torch.no_grad():
            err32 = (model.float()(logits_input()).double() - out).abs().max().item()
        print(f'{name}: logits std {out.std().item():.3f}, max |logit| {out.abs().max().item():.3f}, '
              f'PyTorch float32 max error {err32:.2e}')
    write_json('resnet_logits.json', logits, {'input': '((31n + 17c + 7h + 3w) mod 23 - 11) / 11, NCHW [2, 3, 64, 64]'})


# ------------------------------------------------------------ small cases

def small_state_dict():
    g = torch.Generator().manual_seed(7)
    base = torch.randn(12, generator=g)
    return {
        'f32': torch.randn(3, 4, generator=g),
        'f16': torch.randn(5, generator=g).half(),
        'bf16': torch.randn(2, 3, generator=g).bfloat16(),
        'f64': torch.randn(4, generator=g).double(),
        'i32': torch.arange(-3, 3, dtype=torch.int32),
        'bn.num_batches_tracked': torch.tensor(7),
        'scalar': torch.tensor(2.5),
        'empty': torch.zeros(0, 3),
        'base': base,
        'tail': base[4:],  # storage offset 4
        'every_third': base[::3],  # stride 3
        'transposed': torch.randn(3, 5, generator=g).t(),  # strides (1, 5)
        'special': torch.tensor([0.0, -0.0, float('inf'), float('-inf'), 1e-40, 3.4e38]),
    }


class EvilReduce:
    """A pickle that, loaded by Python's pickle, runs a shell command."""

    def __reduce__(self):
        return (os.system, (f'touch {EVIL_MARKER}',))


def write_small_cases():
    sd = small_state_dict()
    write_bytes('small.pth', torch_save_bytes(sd))
    contiguous = {k: v.contiguous().clone() for k, v in sd.items()}
    write_bytes('small.safetensors', safetensors_bytes(contiguous, {'note': 'written by make_io_fixtures.py', 'epoch': '3'}))
    write_exact_json('small_expected.json', sd, {'note': 'written by make_io_fixtures.py', 'epoch': '3'})

    weights = {'conv.weight': torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(1))}
    write_bytes('checkpoint.pth', torch_save_bytes({'epoch': 3, 'lr': 0.1, 'state_dict': weights, 'names': ['a', 'b']}))
    write_bytes('protocol4.pth', torch_save_bytes(weights, pickle_protocol=4))
    write_bytes('parameter.pth', torch_save_bytes({'conv.weight': torch.nn.Parameter(weights['conv.weight'])}))
    # (the legacy format keys storages by object id, so this file differs between runs)
    write_bytes('legacy.pth', torch_save_bytes(weights, _use_new_zipfile_serialization=False))
    torch.manual_seed(0)
    write_bytes('whole_model.pth', torch_save_bytes(torch.nn.Linear(2, 2)))
    write_bytes('evil_os_system.pth', torch_save_bytes({'conv.weight': weights['conv.weight'], 'payload': EvilReduce()}))
    write_exact_json('small_weights.json', weights, {})


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    write_small_cases()
    write_resnets()
    read_safetensors(os.path.join(OUT, 'small.safetensors'))  # the writer obeys the reader's rules
    print('wrote', OUT)

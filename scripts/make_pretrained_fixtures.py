#!/usr/bin/env python3
"""Write test/fixtures/pretrained/ from torchvision: its ImageNet preprocessing of real
photographs and the logits of a ResNet-18 on them.

Run from the repository root:  /usr/bin/python3 scripts/make_pretrained_fixtures.py
Needs Debian's python3-skimage, whose sample images are the photographs (files no one
here made): chelsea.png (a cat, 451x300 RGB), coffee.png (600x400 RGB), camera.png
(512x512 greyscale) and hubble_deep_field.jpg (a JPEG, 1000x872).

For each photograph and preset (torchvision's ResNet50_Weights.IMAGENET1K_V1 and
IMAGENET1K_V2 transforms, as given by .transforms()):
  - <photo>-<preset>.png: the transform's output before normalisation, as 8-bit RGB
    (exact: PIL resizes 8-bit images to 8 bits, so output * 255 is a whole number),
  - logits.json: torchvision's resnet18 in eval mode on the normalised output, with every
    state-dict tensor filled from the integer hash of make_model_fixtures.py (which the
    tests compute bit for bit, so no weights are committed), and the presets' numbers.
"""
import importlib.util
import json
import os

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.models import ResNet50_Weights

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'pretrained')
PHOTOS = '/usr/lib/python3/dist-packages/skimage/data'
CASES = [('chelsea.png', 'IMAGENET1K_V1'), ('chelsea.png', 'IMAGENET1K_V2'), ('coffee.png', 'IMAGENET1K_V1'),
         ('camera.png', 'IMAGENET1K_V1'), ('hubble_deep_field.jpg', 'IMAGENET1K_V2')]

spec = importlib.util.spec_from_file_location('model_fixtures', os.path.join(HERE, 'make_model_fixtures.py'))
model_fixtures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(model_fixtures)


def hashed_resnet18():
    model = torchvision.models.resnet18()
    state = {k: (torch.zeros_like(t) if k.endswith('num_batches_tracked') else torch.from_numpy(model_fixtures.hashed_tensor(k, tuple(t.shape))))
             for k, t in model.state_dict().items()}
    model.load_state_dict(state)
    return model.eval()


def main():
    os.makedirs(OUT, exist_ok=True)
    model = hashed_resnet18()
    presets = {}
    cases = []
    for photo, preset in CASES:
        transform = getattr(ResNet50_Weights, preset).transforms()
        presets[preset] = {'resizeShorter': transform.resize_size[0], 'crop': transform.crop_size[0],
                           'mean': transform.mean, 'std': transform.std, 'interpolation': str(transform.interpolation)}
        image = Image.open(os.path.join(PHOTOS, photo)).convert('RGB')
        x = transform(image)  # [3, 224, 224], normalised
        mean = torch.tensor(transform.mean).view(3, 1, 1)
        std = torch.tensor(transform.std).view(3, 1, 1)
        pixels = (x * std + mean) * 255
        as_bytes = pixels.round().clamp(0, 255).to(torch.uint8)
        assert (pixels - as_bytes.float()).abs().max() < 1e-3, 'the transform output is not 8-bit'
        name = f"{os.path.splitext(photo)[0]}-{preset}.png"
        Image.fromarray(as_bytes.permute(1, 2, 0).numpy()).save(os.path.join(OUT, name), optimize=True)
        with torch.no_grad():
            logits = model(x.unsqueeze(0))[0].double().numpy()
        cases.append({'photo': photo, 'preset': preset, 'crop': name, 'logits': [float(f'{v:.7g}') for v in logits]})
        print(photo, preset, 'top-5', np.argsort(-logits)[:5].tolist())
    with open(os.path.join(OUT, 'logits.json'), 'w') as f:
        json.dump({'torchvision': torchvision.__version__, 'model': 'resnet18', 'hashSeed': model_fixtures.SEED,
                   'presets': presets, 'cases': cases}, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()

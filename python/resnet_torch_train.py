# The torch engine of `resnet train --engine torch`: one process of a torchrun launch,
# training with DistributedDataParallel (gloo on CPUs, nccl on GPUs) the network that
# `resnet export --format pytorch` generates, on the recipe resnet-ts resolved for it.
#
# It reads a job (JSON, written by src/train/torch-engine.ts): the module, the initial
# weights, the images as raw uint8 NHWC files with int32 labels (subset and validation
# split already drawn), the learning rate of every step (the schedule resnet-ts built) and
# the recipe. It writes the checkpoints' data itself, and tells the resnet process
# everything else (steps, evaluations, epoch records, best/final weights) as JSON lines on
# stdout, from rank 0; resnet writes metrics.jsonl, steps.jsonl, the model files and
# summary.json with its own writers, so the run folder is the one its own trainer makes.
#
# The global batch is the recipe's batchSize, split over the processes; each process
# scales its summed loss so that DDP's average of the gradients is the gradient of the
# mean over the global batch. Batch norm uses each process's own batch (no SyncBN).
import hashlib
import importlib.util
import itertools
import json
import math
import os
import signal
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

CHECKPOINT_FORMAT = "resnet-ts.checkpoint.torch.v1"


def emit(event, **fields):
    fields["event"] = event
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def load_module(path):
    spec = importlib.util.spec_from_file_location("resnet_ts_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Images:
    """A split as raw uint8 NHWC images and int32 labels."""

    def __init__(self, spec):
        n, h, w, c = spec["count"], spec["height"], spec["width"], spec["channels"]
        with open(spec["images"], "rb") as f:
            self.images = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).reshape(n, h, w, c)
        with open(spec["labels"], "rb") as f:
            self.labels = torch.frombuffer(bytearray(f.read()), dtype=torch.int32).long()
        self.count = n


def seeded(*parts):
    """A generator whose stream depends on these integers alone (resumable: no hidden state)."""
    h = hashlib.sha256(("resnet-ts:" + ":".join(str(p) for p in parts)).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(h[:8], "little") & ((1 << 63) - 1))


class Recipe:
    def __init__(self, job):
        c = job["config"]
        self.mean = torch.tensor(c["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(c["std"], dtype=torch.float32).view(1, -1, 1, 1)
        self.padding = job["cropPadding"]
        self.flip = job["flip"]

    def normalise(self, x_uint8_nhwc):
        x = x_uint8_nhwc.permute(0, 3, 1, 2).float() / 255.0
        return (x - self.mean) / self.std

    def augment(self, x_uint8_nhwc, gen):
        """Random crop after zero padding, then random horizontal flip (src/data/transforms.ts), then normalise."""
        x = x_uint8_nhwc.permute(0, 3, 1, 2).float() / 255.0
        n, _, h, w = x.shape
        p = self.padding
        if p > 0:
            padded = F.pad(x, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (n,), generator=gen)
            dx = torch.randint(0, 2 * p + 1, (n,), generator=gen)
            x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
        if self.flip:
            flips = torch.rand(n, generator=gen) < 0.5
            x = torch.where(flips.view(n, 1, 1, 1), x.flip(3), x)
        return (x - self.mean) / self.std


def evaluate(net, data, recipe, batch_size, classes, device, on_batch):
    net.eval()
    loss_sum, top1, top5 = 0.0, 0, 0
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    batches = math.ceil(data.count / batch_size)
    with torch.no_grad():
        for b in range(batches):
            x = recipe.normalise(data.images[b * batch_size:(b + 1) * batch_size]).to(device)
            y = data.labels[b * batch_size:(b + 1) * batch_size].to(device)
            logits = net(x)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            pred = logits.argmax(1)
            top1 += int((pred == y).sum())
            # Rank of the label: the classes scored strictly higher (src/train/metrics.ts).
            rank = (logits > logits.gather(1, y.view(-1, 1))).sum(1)
            top5 += int((rank < 5).sum())
            confusion += torch.bincount((y * classes + pred).cpu(), minlength=classes * classes).view(classes, classes)
            on_batch(b + 1, batches)
    net.train()
    per_class = [(float(confusion[c, c]) / float(confusion[c].sum())) if confusion[c].sum() > 0 else None for c in range(classes)]
    n = data.count
    return {"loss": loss_sum / n, "top1": top1 / n, "top5": top5 / n, "count": n, "correct": top1, "perClass": per_class}


class Ema:
    """src/train/ema.ts: decay ramped as min(d, (1 + n) / (10 + n)); counters copied."""

    def __init__(self, net, decay):
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in net.state_dict().items()}

    def update(self, net):
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        with torch.no_grad():
            for k, v in net.state_dict().items():
                if k.endswith("num_batches_tracked"):
                    self.shadow[k].copy_(v)
                else:
                    self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)


def checksum(tensors, metadata):
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(("%s:%s;" % (name, "x".join(str(d) for d in t.shape))).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    for k in sorted(metadata):
        h.update(("%s=%s;" % (k, metadata[k])).encode())
    return h.hexdigest()


def checkpoint_files(run_dir):
    folder = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        if name.startswith("step-") and name.endswith(".safetensors"):
            try:
                found.append((int(name[5:-12]), os.path.join(folder, name)))
            except ValueError:
                pass
    return [p for _, p in sorted(found, reverse=True)]


def load_checkpoint(module, path):
    tensors, metadata = module.load_safetensors(path)
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise ValueError("not a torch-engine checkpoint (format %r)" % metadata.get("format"))
    rest = {k: v for k, v in metadata.items() if k != "checksum"}
    if metadata.get("checksum") != checksum(tensors, rest):
        raise ValueError("checksum mismatch: the checkpoint is damaged")
    return tensors, json.loads(metadata["state"])


def main():
    job = json.load(open(sys.argv[1]))
    config = job["config"]
    use_cuda = torch.cuda.is_available() and job.get("device", "auto") != "cpu"
    dist.init_process_group("nccl" if use_cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    lead = rank == 0
    say = emit if lead else (lambda *a, **k: None)

    stop = {"asked": False}

    def on_signal(signum, frame):
        stop["asked"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # resnet asks for a stop (Ctrl-C) by creating this file; rank 0 looks for it each step.
    stop_file = job["stopFile"]

    def stop_wanted():
        if lead and os.path.exists(stop_file):
            stop["asked"] = True
        return stop["asked"]

    module = load_module(job["module"])
    net = module.Network()
    tensors, _ = module.load_safetensors(job["init"])
    own = net.state_dict()
    net.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()})
    net.to(device)
    named = dict(net.named_parameters())
    if config["decayAll"]:
        groups = [{"params": list(named.values()), "weight_decay": config["weightDecay"]}]
    else:
        groups = [{"params": [p for p in named.values() if p.dim() > 1], "weight_decay": config["weightDecay"]},
                  {"params": [p for p in named.values() if p.dim() <= 1], "weight_decay": 0.0}]
    lrs = job["lrs"]
    optimizer = torch.optim.SGD(groups, lr=lrs[0], momentum=config["momentum"],
                                nesterov=bool(config["nesterov"] and config["momentum"] > 0))
    ema = Ema(net, config["ema"]) if config["ema"] is not None else None

    recipe = Recipe(job)
    train = Images(job["data"]["train"])
    eval_set = Images(job["data"]["eval"]) if job["data"]["eval"] else None
    test_set = Images(job["data"]["test"]) if job["data"]["test"] and job["data"]["evalSplit"] == "val" else None
    classes = job["numClasses"]
    total_steps, per_epoch = job["totalSteps"], job["stepsPerEpoch"]
    batch_size = config["batchSize"]
    epochs = math.ceil(total_steps / per_epoch)
    run_dir = job["runDir"]

    state = {"epoch": 0, "batchInEpoch": 0, "step": 0, "best": None, "emaUpdates": 0 if ema else None,
             "epochTotals": {"lossSum": 0.0, "lossCount": 0, "correct": 0, "seen": 0, "skipped": 0, "seconds": 0.0, "dataSeconds": 0.0}}
    resumed_from = None
    if job["resume"]:
        for path in checkpoint_files(run_dir):
            try:
                saved, saved_state = load_checkpoint(module, path)
            except Exception as e:  # a damaged file: the next newest one
                say("note", text="skipping %s: %s" % (path, e))
                continue
            net.load_state_dict({k[6:]: v.to(own[k[6:]].dtype) for k, v in saved.items() if k.startswith("model.")})
            momentum = {k[len("optimizer.momentum."):]: v for k, v in saved.items() if k.startswith("optimizer.momentum.")}
            for name, p in named.items():
                if name in momentum:
                    optimizer.state[p]["momentum_buffer"] = momentum[name].to(device)
            if ema:
                for k in ema.shadow:
                    ema.shadow[k].copy_(saved["ema." + k])
                ema.updates = saved_state["emaUpdates"] or 0
            state = saved_state
            resumed_from = path
            break
        # From here on the run folder's logs go as far as the checkpoint (all of them are cut when there is none).
        say("resumed", path=resumed_from, step=state["step"], epoch=state["epoch"], batchInEpoch=state["batchInEpoch"])
    net.to(device)
    ddp = torch.nn.parallel.DistributedDataParallel(net, device_ids=[local_rank] if use_cuda else None)
    say("start", world=world, device=device.type, backend=dist.get_backend())

    # Files rank 0 hands to resnet are written under a name of their own each time (a stop asked
    # at a checkpoint step saves that step twice; resnet may read the last one after the next
    # is written), one a leftover of an atomic write once this process is gone (run-folder.ts).
    handed = itertools.count(1)

    def pending_name(path):
        folder, base = os.path.split(path)
        return os.path.join(folder, ".%s.%d.%d.tmp" % (base, os.getpid(), next(handed)))

    def save_checkpoint():
        if not lead:
            return
        tensors = {"model." + k: v for k, v in net.state_dict().items()}
        for name, p in named.items():
            buf = optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                tensors["optimizer.momentum." + name] = buf
        if ema:
            for k, v in ema.shadow.items():
                tensors["ema." + k] = v
            state["emaUpdates"] = ema.updates
        metadata = {"format": CHECKPOINT_FORMAT, "state": json.dumps(state), "config": json.dumps(config)}
        metadata["checksum"] = checksum(tensors, metadata)
        path = os.path.join(run_dir, "checkpoints", "step-%09d.safetensors" % state["step"])
        # resnet renames it into place (and prunes the old ones) once the step, epoch and weights
        # records before it are on disk, so a checkpoint never covers steps the run folder's logs
        # lack (src/cli/commands/train-torch.ts).
        pending = pending_name(path)
        module.save_safetensors(pending, tensors, metadata)
        emit("checkpoint", step=state["step"], path=path, pending=pending)

    def save_weights(which):
        if not lead:
            return
        path = pending_name(os.path.join(run_dir, "%s.torch.safetensors" % which))
        weights = ema.shadow if ema else net.state_dict()
        module.save_safetensors(path, weights)
        emit("weights", which=which, path=path, epoch=state["epoch"], step=state["step"])

    def run_eval(data):
        if not lead:
            return None
        if ema:
            own_weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
            net.load_state_dict(ema.shadow)
        result = evaluate(net, data, recipe, config["evalBatchSize"], classes, device,
                          lambda d, t: emit("eval", done=d, total=t))
        if ema:
            net.load_state_dict(own_weights)
        return result

    n = train.count
    lr = lrs[min(state["step"], total_steps - 1)]
    status = "finished"
    while state["step"] < total_steps:
        epoch = state["epoch"]
        order = torch.randperm(n, generator=seeded(config["seed"], "order", epoch))
        last = time.perf_counter()
        for b in range(state["batchInEpoch"], per_epoch):
            totals = state["epochTotals"]
            t0 = time.perf_counter()
            idx = order[b * batch_size:(b + 1) * batch_size]
            global_n = len(idx)
            mine = torch.tensor_split(idx, world)[rank]
            if len(mine) == 0:  # a last batch smaller than the processes: repeat an image, with zero weight
                mine, weight = idx[:1], 0.0
            else:
                weight = 1.0
            x = recipe.augment(train.images[mine], seeded(config["seed"], "augment", epoch, b, rank)).to(device)
            y = train.labels[mine].to(device)
            totals["dataSeconds"] += time.perf_counter() - t0
            lr = lrs[state["step"]]
            for g in optimizer.param_groups:
                g["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            logits = ddp(x)
            loss_sum = F.cross_entropy(logits, y, reduction="sum", label_smoothing=config["labelSmoothing"])
            (loss_sum * (weight * world / global_n)).backward()
            stats = torch.tensor([loss_sum.item() * weight, float((logits.argmax(1) == y).sum()) * weight,
                                  float(len(mine)) * weight, 1.0 if stop_wanted() else 0.0], dtype=torch.float64)
            dist.all_reduce(stats)
            batch_loss = stats[0].item() / global_n
            norm = torch.nn.utils.clip_grad_norm_(net.parameters(), config["clipGradNorm"] or float("inf"))
            if not math.isfinite(batch_loss) or not math.isfinite(float(norm)):
                say("diverged", text="non-finite %s at step %d (epoch %d, batch %d, lr %.4g); %s" % (
                    "loss" if not math.isfinite(batch_loss) else "gradient", state["step"] + 1, epoch + 1, b + 1, lr,
                    "continue with --resume and --clip-grad-norm 1, or start a new run with a lower --lr"))
                dist.destroy_process_group()
                sys.exit(3)
            optimizer.step()
            if ema:
                ema.update(net)
            correct = int(stats[1].item())
            totals["lossSum"] += stats[0].item()
            totals["lossCount"] += global_n
            totals["correct"] += correct
            totals["seen"] += global_n
            state["step"] += 1
            state["batchInEpoch"] = b + 1
            now = time.perf_counter()
            totals["seconds"] += now - last
            last = now
            say("step", epoch=epoch + 1, epochs=epochs, batch=b + 1, batches=per_epoch, step=state["step"], totalSteps=total_steps,
                loss=totals["lossSum"] / totals["lossCount"], top1=totals["correct"] / totals["lossCount"], lr=lr,
                imagesPerSecond=totals["seen"] / max(1e-9, totals["seconds"]), batchSize=batch_size,
                batchLoss=batch_loss, batchTop1=correct / global_n, batchLr=lr)
            every = config["checkpointEvery"]
            if every and state["step"] % every == 0 and state["step"] < total_steps and b + 1 < per_epoch:
                save_checkpoint()
            if state["step"] >= total_steps:
                break
            if stats[3].item() > 0:
                save_checkpoint()
                status = "stopped"
                break
        if status == "stopped":
            break
        # The end of an epoch: evaluate, record, checkpoint (src/train/trainer.ts finishEpoch).
        every = config["evalEvery"]
        due = state["step"] >= total_steps or (every > 0 and (epoch + 1) % every == 0)
        result = run_eval(eval_set) if eval_set is not None and due else None
        totals = state["epochTotals"]
        record = {
            "epoch": epoch + 1, "step": state["step"], "lr": lr,
            "trainLoss": totals["lossSum"] / totals["lossCount"] if totals["lossCount"] else None,
            "trainTop1": totals["correct"] / totals["lossCount"] if totals["lossCount"] else None,
            "eval": result and {"split": job["data"]["evalSplit"], "loss": result["loss"], "top1": result["top1"],
                                "top5": result["top5"], "perClass": result["perClass"]},
            "ema": ema is not None, "skippedSteps": 0, "epochSeconds": totals["seconds"], "dataSeconds": totals["dataSeconds"],
            "imagesPerSecond": totals["seen"] / max(1e-9, totals["seconds"]),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        }
        state["epoch"] += 1
        state["batchInEpoch"] = 0
        state["epochTotals"] = {"lossSum": 0.0, "lossCount": 0, "correct": 0, "seen": 0, "skipped": 0, "seconds": 0.0, "dataSeconds": 0.0}
        if result and (state["best"] is None or result["top1"] > state["best"]["top1"]):
            state["best"] = {"top1": result["top1"], "epoch": epoch + 1}
            save_weights("best")
        say("epoch", record=record, evalResult=result)
        save_checkpoint()
        flag = torch.tensor([1.0 if stop_wanted() else 0.0])
        dist.all_reduce(flag)
        if flag.item() > 0 and state["step"] < total_steps:
            status = "stopped"
            break
    if status == "finished":
        save_weights("final")
    test = run_eval(test_set) if status == "finished" and test_set is not None else None
    say("done", status=status, state=state, test=test)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

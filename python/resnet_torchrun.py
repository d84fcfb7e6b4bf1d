# torchrun (torch.distributed.run), as `resnet train --engine torch` launches it. Under
# Python 3.11 the torchrun of torch 1.13 cannot parse its own default --redirects/--tee
# ("0": Std is a plain Enum, never equal to an int) and fails; this mends that parse
# where it is broken, then runs torchrun with the same arguments.
import sys

from torch.distributed.elastic.multiprocessing import api

if api.Std.from_str("0") is None:
    def from_str(cls, vm):
        if ":" not in vm:
            return cls(int(vm))
        return {int(k): cls(int(v)) for k, v in (p.split(":") for p in vm.split(","))}

    api.Std.from_str = classmethod(from_str)

from torch.distributed.run import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])

// Weights in and out: safetensors, PyTorch .pth files, name mapping, ONNX export.
export { WeightsFileError } from './errors.js';
export { FileWriteError, writeFileAtomic } from '../util/atomic-write.js';
export {
  loadSafetensors, readSafetensors, parseSafetensors, saveSafetensors, serializeSafetensors, MAX_HEADER_BYTES,
} from './safetensors.js';
export type { SafetensorsContents } from './safetensors.js';
export { loadPth, parsePth } from './pth.js';
export { exportOnnx, saveOnnx } from './onnx-export.js';
export { saveTorchExport, torchModuleSource, TORCH_MODULE_FILE, TORCH_WEIGHTS_FILE } from './torch-export.js';
export type { OnnxExportOptions, ExportableNetwork } from './onnx-export.js';
export { OPSET_VERSION } from './onnx-graph.js';
export { detectNaming, toOurNames, TIMM_RESNETV2_TABLE, WEIGHT_NAMINGS } from './name-mapping.js';
export type { WeightNaming, MappedStateDict } from './name-mapping.js';
export { loadWeights, detectFormat } from './weights.js';
export { saveNpy, serializeNpy } from './npy.js';
export type { LoadedWeights, LoadWeightsOptions, WeightFormat } from './weights.js';

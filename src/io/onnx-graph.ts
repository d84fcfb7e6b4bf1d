// A small builder for ONNX graphs: named values, nodes with typed attributes, float32
// and int64 initializers, encoded with the ONNX schema compiled for protobuf.js
// (the `onnx-proto` package), never by hand. Operator semantics: the ONNX operator
// specification (github.com/onnx/onnx/blob/main/docs/Operators.md), opset 17.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** Opset of the default ONNX domain the graphs are written for. */
export const OPSET_VERSION = 17;
/** IR version 8 is the one of ONNX 1.10 - 1.12, which introduced opsets 15 - 17. */
const IR_VERSION = 8;

export type AttributeValue = number | readonly number[] | string | { float: number };

/** One dimension of a graph input or output: a fixed size or a symbolic name ('batch'). */
export type Dim = number | string;

export class OnnxGraph {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly used = new Set<string>();

  /** A value name not used yet, from a readable stem (`layer1.0.conv1`). */
  fresh(stem: string): string {
    let name = stem;
    for (let i = 1; this.used.has(name); i++) name = `${stem}_${i}`;
    this.used.add(name);
    return name;
  }

  /** A float32 constant (weights, biases, BN statistics). */
  floatInitializer(stem: string, dims: readonly number[], values: Float32Array): string {
    const name = this.fresh(stem);
    this.initializers.push(onnx.TensorProto.create({
      name, dims: [...dims], dataType: onnx.TensorProto.DataType.FLOAT, rawData: littleEndianBytes(values),
    }));
    return name;
  }

  /** An int64 constant (Slice / Pad arguments). */
  int64Initializer(stem: string, values: readonly number[]): string {
    const name = this.fresh(stem);
    const data = new DataView(new ArrayBuffer(8 * values.length));
    values.forEach((v, i) => data.setBigInt64(8 * i, BigInt(v), true));
    this.initializers.push(onnx.TensorProto.create({
      name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(data.buffer),
    }));
    return name;
  }

  /** Add a node; returns the name of its (single) output. */
  node(opType: string, inputs: readonly string[], stem: string, attrs: Record<string, AttributeValue> = {}): string {
    const output = this.fresh(stem);
    this.nodes.push(onnx.NodeProto.create({
      opType, input: [...inputs], output: [output], name: `${opType}:${output}`,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    }));
    return output;
  }

  /**
   * The whole model as protobuf bytes: one float32 input and one float32 output with the
   * given (possibly symbolic) dimensions, and string metadata.
   */
  encode(graphName: string, input: { name: string; dims: readonly Dim[] }, output: { name: string; dims: readonly Dim[] },
    metadata: Record<string, string>): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET_VERSION }],
      producerName: 'resnet-ts',
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: [valueInfo(input.name, input.dims)],
        output: [valueInfo(output.name, output.dims)],
      },
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, dims: readonly Dim[]): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function attribute(name: string, v: AttributeValue): InstanceType<typeof onnx.AttributeProto> {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`ONNX attribute ${name}: ${v} is not an integer; pass { float: ${v} }`);
    return onnx.AttributeProto.create({ name, type: T.INT, i: v });
  }
  if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(v) });
  if ('float' in v) return onnx.AttributeProto.create({ name, type: T.FLOAT, f: v.float });
  return onnx.AttributeProto.create({ name, type: T.INTS, ints: [...v] });
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** TensorProto.raw_data is little-endian whatever the host. */
function littleEndianBytes(values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new DataView(new ArrayBuffer(values.length * 4));
  values.forEach((v, i) => out.setFloat32(4 * i, v, true));
  return new Uint8Array(out.buffer);
}

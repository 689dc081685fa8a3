using Google.Protobuf;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Onnx.Schema;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Onnx;

/// <summary>Reads ONNX model files into the engine's graph IR.</summary>
public static class OnnxLoader
{
    public static Model LoadFile(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException($"{path}: cannot read the model file ({e.Message})", e);
        }
        return Load(bytes, path);
    }

    public static Model Load(byte[] bytes, string source = "model")
    {
        if (bytes.Length == 0) throw new ModelFormatException($"{source}: the file is empty; expected an ONNX model");
        ModelProto proto;
        try
        {
            proto = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new ModelFormatException($"{source}: not a valid ONNX model, the protobuf is malformed or truncated ({e.Message})", e);
        }
        return FromProto(proto, source);
    }

    public static Model FromProto(ModelProto proto, string source)
    {
        if (proto.Graph is null)
            throw new ModelFormatException($"{source}: the ONNX model has no graph (field 'graph' is missing); is this really an ONNX file?");
        var model = new Model
        {
            IrVersion = proto.IrVersion,
            ProducerName = proto.ProducerName,
            ProducerVersion = proto.ProducerVersion,
            Domain = proto.Domain,
            ModelVersion = proto.ModelVersion,
            DocString = proto.DocString,
            Graph = ConvertGraph(proto.Graph, source, 0),
        };
        foreach (var o in proto.OpsetImport)
        {
            string domain = o.Domain == "ai.onnx" ? "" : o.Domain;
            model.Opsets[domain] = o.Version;
        }
        if (proto.OpsetImport.Count == 0) model.Opsets[""] = 1; // IR v1-2 models had no opset_import
        foreach (var kv in proto.MetadataProps) model.Metadata[kv.Key] = kv.Value;
        if (proto.Functions.Count > 0)
            model.Metadata["tinyops.unsupported.functions"] = string.Join(",", proto.Functions.Select(f => f.Domain + ":" + f.Name));
        return model;
    }

    private static Graph ConvertGraph(GraphProto g, string source, int depth)
    {
        string where = $"{source}: graph '{g.Name}'";
        var graph = new Graph { Name = g.Name, DocString = g.DocString };
        if (g.SparseInitializer.Count > 0)
            throw new ModelFormatException($"{where}: sparse initializers are not supported (first: '{g.SparseInitializer[0].Values?.Name}'); store them dense");
        foreach (var init in g.Initializer)
        {
            if (init.Name.Length == 0) throw new ModelFormatException($"{where}: an initializer has no name");
            if (graph.Initializers.ContainsKey(init.Name)) throw new ModelFormatException($"{where}: initializer '{init.Name}' is defined twice");
            graph.Initializers[init.Name] = OnnxTensors.FromProto(init, $"{where}, initializer '{init.Name}'");
        }
        foreach (var vi in g.Input) graph.Inputs.Add(ConvertValueInfo(vi, where));
        foreach (var vi in g.Output) graph.Outputs.Add(ConvertValueInfo(vi, where));
        foreach (var vi in g.ValueInfo) graph.ValueInfos.Add(ConvertValueInfo(vi, where));
        int index = 0;
        foreach (var n in g.Node)
        {
            var node = new Node
            {
                Name = n.Name,
                OpType = n.OpType,
                Domain = n.Domain == "ai.onnx" ? "" : n.Domain,
                DocString = n.DocString,
                Index = index++,
            };
            if (n.OpType.Length == 0) throw new ModelFormatException($"{where}: {node.DisplayName} has no op_type");
            node.Inputs.AddRange(n.Input);
            node.Outputs.AddRange(n.Output);
            foreach (var a in n.Attribute)
            {
                if (a.Name.Length == 0) throw new ModelFormatException($"{where}: {node.DisplayName} has an attribute with no name");
                if (a.RefAttrName.Length > 0) throw new ModelFormatException($"{where}: {node.DisplayName} attribute '{a.Name}' refers to a function attribute, which only functions may do");
                node.Attributes[a.Name] = ConvertAttribute(a, $"{where}, {node.DisplayName}", source, depth);
            }
            graph.Nodes.Add(node);
        }
        return graph;
    }

    private static AttributeValue ConvertAttribute(AttributeProto a, string where, string source, int depth)
    {
        var kind = (AttributeKind)a.Type;
        if (kind == AttributeKind.Undefined) kind = GuessKind(a);
        string w = $"{where}, attribute '{a.Name}'";
        return kind switch
        {
            AttributeKind.Float => new AttributeValue { Name = a.Name, Kind = kind, Float = a.F },
            AttributeKind.Int => new AttributeValue { Name = a.Name, Kind = kind, Int = a.I },
            AttributeKind.String => new AttributeValue { Name = a.Name, Kind = kind, StringBytes = a.S.ToByteArray() },
            AttributeKind.Tensor => new AttributeValue { Name = a.Name, Kind = kind, Tensor = a.T is null ? throw new ModelFormatException($"{w}: TENSOR attribute without a tensor") : OnnxTensors.FromProto(a.T, w) },
            AttributeKind.Graph => new AttributeValue { Name = a.Name, Kind = kind, Graph = a.G is null ? throw new ModelFormatException($"{w}: GRAPH attribute without a graph") : ConvertGraph(a.G, source, depth + 1) },
            AttributeKind.Floats => new AttributeValue { Name = a.Name, Kind = kind, Floats = a.Floats.ToArray() },
            AttributeKind.Ints => new AttributeValue { Name = a.Name, Kind = kind, Ints = a.Ints.ToArray() },
            AttributeKind.Strings => new AttributeValue { Name = a.Name, Kind = kind, Strings = a.Strings.Select(s => s.ToByteArray()).ToArray() },
            AttributeKind.Tensors => new AttributeValue { Name = a.Name, Kind = kind, Tensors = a.Tensors.Select(t => OnnxTensors.FromProto(t, w)).ToArray() },
            AttributeKind.Graphs => new AttributeValue { Name = a.Name, Kind = kind, Graphs = a.Graphs.Select(g => ConvertGraph(g, source, depth + 1)).ToArray() },
            AttributeKind.SparseTensor or AttributeKind.SparseTensors => throw new ModelFormatException($"{w}: sparse tensor attributes are not supported"),
            AttributeKind.TypeProto or AttributeKind.TypeProtos => new AttributeValue { Name = a.Name, Kind = kind },
            _ => throw new ModelFormatException($"{w}: unknown attribute type {a.Type}"),
        };
    }

    // IR version 1 attributes may lack 'type'; infer it from the one field that is set.
    private static AttributeKind GuessKind(AttributeProto a)
    {
        if (a.G is not null) return AttributeKind.Graph;
        if (a.T is not null) return AttributeKind.Tensor;
        if (!a.S.IsEmpty) return AttributeKind.String;
        if (a.Floats.Count > 0) return AttributeKind.Floats;
        if (a.Ints.Count > 0) return AttributeKind.Ints;
        if (a.Strings.Count > 0) return AttributeKind.Strings;
        if (a.Graphs.Count > 0) return AttributeKind.Graphs;
        if (a.Tensors.Count > 0) return AttributeKind.Tensors;
        if (a.F != 0) return AttributeKind.Float;
        return AttributeKind.Int;
    }

    private static ValueInfo ConvertValueInfo(ValueInfoProto vi, string where)
    {
        var tt = vi.Type?.TensorType;
        if (vi.Type is not null && vi.Type.ValueCase != TypeProto.ValueOneofCase.TensorType && vi.Type.ValueCase != TypeProto.ValueOneofCase.None)
            return new ValueInfo(vi.Name, DataType.Undefined, null) { NonTensorKind = vi.Type.ValueCase.ToString() };
        var type = tt is null ? DataType.Undefined : (DataType)tt.ElemType;
        Dim[]? shape = null;
        if (tt?.Shape is not null)
        {
            shape = new Dim[tt.Shape.Dim.Count];
            for (int i = 0; i < shape.Length; i++)
            {
                var d = tt.Shape.Dim[i];
                shape[i] = d.ValueCase switch
                {
                    TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue => d.DimValue >= 0 ? Dim.Of(d.DimValue) : throw new ModelFormatException($"{where}: value '{vi.Name}' has negative dimension {d.DimValue}"),
                    TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam => Dim.Sym(d.DimParam),
                    _ => Dim.Unknown,
                };
            }
        }
        return new ValueInfo(vi.Name, type, shape);
    }
}

using Google.Protobuf;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Onnx.Schema;

namespace TinyOps.Engine.Onnx;

/// <summary>Writes the engine's graph IR as an ONNX model file.</summary>
public static class OnnxWriter
{
    public static byte[] Write(Model model) => ToProto(model).ToByteArray();

    public static void WriteFile(Model model, string path)
    {
        var bytes = Write(model);
        string tmp = path + ".tmp-" + Environment.ProcessId;
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
    }

    public static ModelProto ToProto(Model model)
    {
        var p = new ModelProto
        {
            IrVersion = model.IrVersion,
            ProducerName = model.ProducerName.Length > 0 ? model.ProducerName : "tinyops",
            ProducerVersion = model.ProducerName.Length > 0 ? model.ProducerVersion : EngineInfo.Version,
            Domain = model.Domain,
            ModelVersion = model.ModelVersion,
            DocString = model.DocString,
            Graph = ToProto(model.Graph),
        };
        foreach (var (domain, version) in model.Opsets) p.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = version });
        foreach (var (k, v) in model.Metadata) p.MetadataProps.Add(new StringStringEntryProto { Key = k, Value = v });
        return p;
    }

    public static GraphProto ToProto(Graph g)
    {
        var p = new GraphProto { Name = g.Name, DocString = g.DocString };
        foreach (var (name, t) in g.Initializers) p.Initializer.Add(OnnxTensors.ToProto(t, name));
        foreach (var vi in g.Inputs) p.Input.Add(ToProto(vi));
        foreach (var vi in g.Outputs) p.Output.Add(ToProto(vi));
        foreach (var vi in g.ValueInfos) p.ValueInfo.Add(ToProto(vi));
        foreach (var n in g.Nodes)
        {
            var np = new NodeProto { Name = n.Name, OpType = n.OpType, Domain = n.Domain, DocString = n.DocString };
            np.Input.AddRange(n.Inputs);
            np.Output.AddRange(n.Outputs);
            foreach (var a in n.Attributes.Values) np.Attribute.Add(ToProto(a));
            p.Node.Add(np);
        }
        return p;
    }

    private static AttributeProto ToProto(AttributeValue a)
    {
        var p = new AttributeProto { Name = a.Name, Type = (AttributeProto.Types.AttributeType)(int)a.Kind };
        switch (a.Kind)
        {
            case AttributeKind.Float: p.F = a.Float; break;
            case AttributeKind.Int: p.I = a.Int; break;
            case AttributeKind.String: p.S = ByteString.CopyFrom(a.StringBytes); break;
            case AttributeKind.Tensor: p.T = OnnxTensors.ToProto(a.Tensor!, ""); break;
            case AttributeKind.Graph: p.G = ToProto(a.Graph!); break;
            case AttributeKind.Floats: p.Floats.AddRange(a.Floats); break;
            case AttributeKind.Ints: p.Ints.AddRange(a.Ints); break;
            case AttributeKind.Strings: p.Strings.AddRange(a.Strings.Select(ByteString.CopyFrom)); break;
            case AttributeKind.Tensors: p.Tensors.AddRange(a.Tensors.Select(t => OnnxTensors.ToProto(t, ""))); break;
            case AttributeKind.Graphs: p.Graphs.AddRange(a.Graphs.Select(ToProto)); break;
        }
        return p;
    }

    private static ValueInfoProto ToProto(ValueInfo vi)
    {
        var p = new ValueInfoProto { Name = vi.Name };
        if (vi.Type == Tensors.DataType.Undefined && vi.Shape is null) return p;
        var tt = new TypeProto.Types.Tensor { ElemType = (int)vi.Type };
        if (vi.Shape is not null)
        {
            tt.Shape = new TensorShapeProto();
            foreach (var d in vi.Shape)
            {
                var dim = new TensorShapeProto.Types.Dimension();
                if (d.Symbol is not null) dim.DimParam = d.Symbol;
                else if (d.Value >= 0) dim.DimValue = d.Value;
                tt.Shape.Dim.Add(dim);
            }
        }
        p.Type = new TypeProto { TensorType = tt };
        return p;
    }
}

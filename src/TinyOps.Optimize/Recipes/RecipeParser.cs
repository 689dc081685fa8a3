using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using TinyOps.Optimize.Evaluation;

namespace TinyOps.Optimize.Recipes;

/// <summary>
/// Reads a recipe from YAML (or JSON, which YAML reads too) and checks it completely: every field, every pass and
/// parameter (through <see cref="PassCatalog"/>), so a recipe that parses builds. Errors name the file, the line,
/// the variant and the field (also as a path in <see cref="RecipeException.Field"/>). Data set names (evaluation,
/// calibration) are checked against a <see cref="DataSets"/> (default: the built-ins):
/// <code>
/// name: fmnist-cnn                 # required
/// evaluation: fashion-mnist        # labelled set for the accuracy gate; omit for none
/// latency_runs: 200                # timed runs per variant (0: no latency)
/// variants:
///   - name: int8                   # unique, letters, digits, - _ .
///     targets: [cortex-m4, phone]  # device classes
///     max_accuracy_drop: 1.0       # percentage points, default 1
///     passes:
///       - fold-constants           # a pass without parameters
///       - quantize: { mode: static-int8, calibration: fashion-mnist, per_channel: true }
/// </code>
/// </summary>
public static class RecipeParser
{
    private static readonly string[] RecipeFields = ["name", "evaluation", "latency_runs", "variants", "description"];
    private static readonly string[] VariantFields = ["name", "targets", "max_accuracy_drop", "passes", "description"];

    public static Recipe ParseFile(string path, DataSets? sets = null)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RecipeException($"{path}: cannot read the recipe ({e.Message})", e);
        }
        return Parse(text, path, sets);
    }

    public static Recipe Parse(string text, string source, DataSets? sets = null)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e)
        {
            throw new RecipeException($"{source}: line {e.Start.Line}, column {e.Start.Column}: not valid YAML or JSON ({Inner(e).Message})", e);
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new RecipeException($"{source}: a recipe is a mapping with 'name' and 'variants'; the file holds {(stream.Documents.Count == 0 ? "nothing" : "something else")}");
        CheckFields(root, RecipeFields, source, "the recipe", null);
        string name = RequiredScalar(root, "name", source, "the recipe", null);
        string? evaluation = OptionalScalar(root, "evaluation", source, null);
        var labelled = sets?.LabelledNames ?? ["fashion-mnist"];
        if (evaluation is not null && evaluation != "none" && !labelled.Contains(evaluation))
            throw new RecipeException($"{source}: line {Line(root, "evaluation")}: field 'evaluation' is '{evaluation}'; use {string.Join(", ", labelled)} (labelled sets) or none") { Field = "evaluation" };
        int latencyRuns = 200;
        if (OptionalScalar(root, "latency_runs", source, null) is { } lr
            && (!int.TryParse(lr, NumberStyles.Integer, CultureInfo.InvariantCulture, out latencyRuns) || latencyRuns < 0 || latencyRuns > 100_000))
            throw new RecipeException($"{source}: line {Line(root, "latency_runs")}: field 'latency_runs' is '{lr}'; it must be a whole number from 0 to 100000") { Field = "latency_runs" };
        if (!root.Children.TryGetValue(new YamlScalarNode("variants"), out var vnode) || vnode is not YamlSequenceNode seq || seq.Children.Count == 0)
            throw new RecipeException($"{source}: field 'variants' is missing or empty; list at least one variant with a name and passes") { Field = "variants" };
        var variants = new List<RecipeVariant>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            var v = ParseVariant(seq.Children[i], i, source, sets);
            if (!names.Add(v.Name))
                throw new RecipeException($"{source}: line {v.Line}: variant name '{v.Name}' is used twice; variant names must be unique (they name the output files)") { Field = $"variants[{i}].name" };
            variants.Add(v);
        }
        return new Recipe { Name = name, Source = source, Evaluation = evaluation == "none" ? null : evaluation, LatencyRuns = latencyRuns, Variants = variants };
    }

    private static RecipeVariant ParseVariant(YamlNode node, int index, string source, DataSets? sets)
    {
        int line = (int)node.Start.Line;
        string path = $"variants[{index}]";
        if (node is not YamlMappingNode map)
            throw new RecipeException($"{source}: line {line}: variant {index + 1} is not a mapping; give it 'name' and 'passes'") { Field = path };
        string where0 = $"variant {index + 1}";
        CheckFields(map, VariantFields, source, where0, path);
        string name = RequiredScalar(map, "name", source, where0, path);
        if (name.Length == 0 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
            throw new RecipeException($"{source}: line {line}: variant name '{name}' may only hold letters, digits, '-', '_' and '.' (it names the output file)") { Field = path + ".name" };
        string where = $"{source}: variant '{name}'";
        double maxDrop = 1.0;
        if (OptionalScalar(map, "max_accuracy_drop", source, path) is { } md
            && (!double.TryParse(md, NumberStyles.Float, CultureInfo.InvariantCulture, out maxDrop) || !(maxDrop >= 0 && maxDrop <= 100)))
            throw new RecipeException($"{where} (line {Line(map, "max_accuracy_drop")}): field 'max_accuracy_drop' is '{md}'; it must be a number of percentage points from 0 to 100") { Field = path + ".max_accuracy_drop" };
        var targets = new List<string>();
        if (map.Children.TryGetValue(new YamlScalarNode("targets"), out var tnode))
        {
            IEnumerable<YamlNode> items = tnode is YamlSequenceNode ts ? ts.Children : tnode is YamlScalarNode ? [tnode]
                : throw new RecipeException($"{where} (line {tnode.Start.Line}): field 'targets' must be a list of device classes, e.g. [cortex-m4, phone]") { Field = path + ".targets" };
            foreach (var t in items)
            {
                if (t is not YamlScalarNode { Value: { Length: > 0 } tv } || tv.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
                    throw new RecipeException($"{where} (line {t.Start.Line}): field 'targets' holds '{(t as YamlScalarNode)?.Value ?? t.ToString()}'; a device class is a name of letters, digits, '-', '_' and '.'") { Field = path + ".targets" };
                targets.Add(tv);
            }
        }
        if (!map.Children.TryGetValue(new YamlScalarNode("passes"), out var pnode) || pnode is not YamlSequenceNode pseq || pseq.Children.Count == 0)
            throw new RecipeException($"{where} (line {line}): field 'passes' is missing or empty; list the passes to apply, e.g. - quantize: {{ mode: static-int8 }}") { Field = path + ".passes" };
        var passes = new List<PassSpec>();
        for (int i = 0; i < pseq.Children.Count; i++)
        {
            string passPath = $"{path}.passes[{i}]";
            var spec = ParsePass(pseq.Children[i], i, where, passPath);
            PassCatalog.Create(spec, $"{where}, pass {i + 1} '{spec.Pass}' (line {spec.Line})", sets, passPath); // validates
            passes.Add(spec);
        }
        return new RecipeVariant { Name = name, Passes = passes, Targets = targets, MaxAccuracyDrop = maxDrop, Line = line };
    }

    private static PassSpec ParsePass(YamlNode node, int index, string where, string path)
    {
        int line = (int)node.Start.Line;
        if (node is YamlScalarNode { Value: { Length: > 0 } name }) return new PassSpec(name, new Dictionary<string, string>(), line);
        if (node is YamlMappingNode { Children.Count: 1 } map && map.Children.First() is var (k, v) && k is YamlScalarNode { Value: { Length: > 0 } pass })
        {
            var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
            if (v is YamlMappingNode pm)
            {
                foreach (var (pk, pv) in pm.Children)
                {
                    if (pk is not YamlScalarNode { Value: { } key } || pv is not YamlScalarNode { Value: { } value })
                        throw new RecipeException($"{where}, pass {index + 1} '{pass}' (line {pk.Start.Line}): parameters are name: value pairs of plain values") { Field = path };
                    parameters[key] = value;
                }
            }
            else if (!(v is YamlScalarNode { Value: null or "" }))
                throw new RecipeException($"{where}, pass {index + 1} '{pass}' (line {v.Start.Line}): the parameters must be a mapping, e.g. {pass}: {{ name: value }}") { Field = path };
            return new PassSpec(pass, parameters, line);
        }
        throw new RecipeException($"{where}, pass {index + 1} (line {line}): write a pass as its name (- fold-constants) or as a name with parameters (- prune: {{ sparsity: 0.5 }})") { Field = path };
    }

    private static void CheckFields(YamlMappingNode map, string[] known, string source, string what, string? path)
    {
        foreach (var (k, _) in map.Children)
        {
            string key = (k as YamlScalarNode)?.Value ?? "";
            if (!known.Contains(key))
                throw new RecipeException($"{source}: line {k.Start.Line}: {what} has an unknown field '{key}' (known: {string.Join(", ", known)})") { Field = FieldPath(path, key) };
        }
    }

    private static string RequiredScalar(YamlMappingNode map, string field, string source, string what, string? path) =>
        OptionalScalar(map, field, source, path) is { Length: > 0 } s
            ? s
            : throw new RecipeException($"{source}: line {map.Start.Line}: {what} needs a '{field}'") { Field = FieldPath(path, field) };

    private static string? OptionalScalar(YamlMappingNode map, string field, string source, string? path)
    {
        if (!map.Children.TryGetValue(new YamlScalarNode(field), out var node)) return null;
        if (node is not YamlScalarNode s) throw new RecipeException($"{source}: line {node.Start.Line}: field '{field}' must be a plain value") { Field = FieldPath(path, field) };
        return s.Value;
    }

    private static string FieldPath(string? path, string field) => path is null ? field : $"{path}.{field}";

    private static long Line(YamlMappingNode map, string field) =>
        map.Children.TryGetValue(new YamlScalarNode(field), out var n) ? n.Start.Line : map.Start.Line;

    private static Exception Inner(Exception e) => e.InnerException is { } i && e.Message.Contains("see inner", StringComparison.OrdinalIgnoreCase) ? i : e;
}

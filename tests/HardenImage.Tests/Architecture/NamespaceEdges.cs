using System.Collections.Immutable;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace HardenImage.Tests.Architecture;

/// <summary>
/// The folder-to-folder edges of a compiled assembly, read from its metadata and IL rather than from `using`
/// lines: a fully-qualified name, a `var` or a call through an extension method leaves no `using` behind, but it
/// always leaves a token in the IL. Within one assembly those tokens are TypeDef/MethodDef/FieldDef handles, so
/// every signature, base type, attribute and method body is walked and each referenced definition is mapped to
/// its folder (the namespace segment after the root: HardenImage.Build.Hardening → Build).
/// </summary>
internal static class NamespaceEdges
{
    /// <summary>One folder edge and the first type pair (by name) that makes it.</summary>
    public sealed record Edge(string From, string To, string ExampleFromType, string ExampleToType, int TypePairs);

    public static IReadOnlyList<Edge> Read(string assemblyPath, string rootNamespace)
    {
        using var stream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var walker = new Walker(md, pe);

        // (fromFolder, toFolder) → set of (fromType, toType)
        var pairs = new SortedDictionary<(string From, string To), SortedSet<(string, string)>>();
        foreach (var handle in md.TypeDefinitions)
        {
            var owner = Outermost(md, handle);
            var fromFolder = Folder(md, owner, rootNamespace);
            if (fromFolder is null)
                continue;
            var fromName = FullName(md, owner);
            foreach (var target in walker.References(handle))
            {
                var targetOwner = Outermost(md, target);
                var toFolder = Folder(md, targetOwner, rootNamespace);
                if (toFolder is null || toFolder == fromFolder)
                    continue;
                if (!pairs.TryGetValue((fromFolder, toFolder), out var set))
                    pairs[(fromFolder, toFolder)] = set = new SortedSet<(string, string)>();
                set.Add((fromName, FullName(md, targetOwner)));
            }
        }

        return pairs
            .Select(p => new Edge(p.Key.From, p.Key.To, p.Value.Min.Item1, p.Value.Min.Item2, p.Value.Count))
            .ToList();
    }

    /// <summary>All type pairs behind one edge, for a failure message or a report.</summary>
    public static IReadOnlyList<(string FromType, string ToType)> Pairs(string assemblyPath, string rootNamespace,
        string from, string to)
    {
        using var stream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var walker = new Walker(md, pe);
        var result = new SortedSet<(string, string)>();
        foreach (var handle in md.TypeDefinitions)
        {
            var owner = Outermost(md, handle);
            if (Folder(md, owner, rootNamespace) != from)
                continue;
            foreach (var target in walker.References(handle))
            {
                var targetOwner = Outermost(md, target);
                if (Folder(md, targetOwner, rootNamespace) == to)
                    result.Add((FullName(md, owner), FullName(md, targetOwner)));
            }
        }
        return result.ToList();
    }

    private static TypeDefinitionHandle Outermost(MetadataReader md, TypeDefinitionHandle handle)
    {
        while (true)
        {
            var declaring = md.GetTypeDefinition(handle).GetDeclaringType();
            if (declaring.IsNil)
                return handle;
            handle = declaring;
        }
    }

    private static string? Folder(MetadataReader md, TypeDefinitionHandle handle, string root)
    {
        var ns = md.GetString(md.GetTypeDefinition(handle).Namespace);
        if (ns == root)
            return "(root)";
        if (!ns.StartsWith(root + ".", StringComparison.Ordinal))
            return null; // <Module>, compiler-emitted attributes in System.Runtime.CompilerServices, ...
        var rest = ns[(root.Length + 1)..];
        var dot = rest.IndexOf('.');
        return dot < 0 ? rest : rest[..dot];
    }

    private static string FullName(MetadataReader md, TypeDefinitionHandle handle)
    {
        var type = md.GetTypeDefinition(handle);
        return md.GetString(type.Namespace) + "." + md.GetString(type.Name);
    }

    private sealed class Walker(MetadataReader md, PEReader pe)
    {
        private static readonly Dictionary<ushort, OperandType> OperandTypes = typeof(OpCodes)
            .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            .Select(f => (OpCode)f.GetValue(null)!)
            .ToDictionary(o => (ushort)o.Value, o => o.OperandType);

        private readonly Collector collector = new(md);

        public HashSet<TypeDefinitionHandle> References(TypeDefinitionHandle handle)
        {
            collector.Found.Clear();
            var type = md.GetTypeDefinition(handle);
            Entity(type.BaseType);
            foreach (var i in type.GetInterfaceImplementations())
                Entity(md.GetInterfaceImplementation(i).Interface);
            Attributes(type.GetCustomAttributes());
            GenericParameters(type.GetGenericParameters());

            foreach (var f in type.GetFields())
            {
                var field = md.GetFieldDefinition(f);
                field.DecodeSignature(collector, null);
                Attributes(field.GetCustomAttributes());
            }
            foreach (var p in type.GetProperties())
            {
                var property = md.GetPropertyDefinition(p);
                property.DecodeSignature(collector, null);
                Attributes(property.GetCustomAttributes());
            }
            foreach (var e in type.GetEvents())
                Entity(md.GetEventDefinition(e).Type);
            foreach (var m in type.GetMethods())
                Method(md.GetMethodDefinition(m));
            foreach (var i in type.GetMethodImplementations())
                Entity(md.GetMethodImplementation(i).MethodDeclaration);
            return [.. collector.Found];
        }

        private void Method(MethodDefinition method)
        {
            method.DecodeSignature(collector, null);
            Attributes(method.GetCustomAttributes());
            GenericParameters(method.GetGenericParameters());
            foreach (var p in method.GetParameters())
                Attributes(md.GetParameter(p).GetCustomAttributes());
            if (method.RelativeVirtualAddress == 0)
                return;
            var body = pe.GetMethodBody(method.RelativeVirtualAddress);
            if (!body.LocalSignature.IsNil)
                md.GetStandaloneSignature(body.LocalSignature).DecodeLocalSignature(collector, null);
            foreach (var region in body.ExceptionRegions)
                Entity(region.CatchType);
            Il(body.GetILReader());
        }

        private void Il(BlobReader il)
        {
            while (il.RemainingBytes > 0)
            {
                ushort code = il.ReadByte();
                if (code == 0xFE)
                    code = (ushort)(0xFE00 | il.ReadByte());
                switch (OperandTypes[code])
                {
                    case OperandType.InlineField:
                    case OperandType.InlineMethod:
                    case OperandType.InlineTok:
                    case OperandType.InlineType:
                    case OperandType.InlineSig:
                        Entity(MetadataTokens.EntityHandle(il.ReadInt32()));
                        break;
                    case OperandType.InlineNone:
                        break;
                    case OperandType.ShortInlineBrTarget:
                    case OperandType.ShortInlineI:
                    case OperandType.ShortInlineVar:
                        il.Offset += 1;
                        break;
                    case OperandType.InlineVar:
                        il.Offset += 2;
                        break;
                    case OperandType.InlineI8:
                    case OperandType.InlineR:
                        il.Offset += 8;
                        break;
                    case OperandType.InlineSwitch:
                        var count = il.ReadInt32();
                        il.Offset += 4 * count;
                        break;
                    default: // InlineBrTarget, InlineI, InlineString, ShortInlineR
                        il.Offset += 4;
                        break;
                }
            }
        }

        private void Attributes(CustomAttributeHandleCollection attributes)
        {
            foreach (var a in attributes)
                Entity(md.GetCustomAttribute(a).Constructor);
        }

        private void GenericParameters(GenericParameterHandleCollection parameters)
        {
            foreach (var g in parameters)
                foreach (var c in md.GetGenericParameter(g).GetConstraints())
                    Entity(md.GetGenericParameterConstraint(c).Type);
        }

        private void Entity(EntityHandle handle)
        {
            if (handle.IsNil)
                return;
            switch (handle.Kind)
            {
                case HandleKind.TypeDefinition:
                    collector.Found.Add((TypeDefinitionHandle)handle);
                    break;
                case HandleKind.TypeSpecification:
                    md.GetTypeSpecification((TypeSpecificationHandle)handle).DecodeSignature(collector, null);
                    break;
                case HandleKind.MethodDefinition:
                    var method = md.GetMethodDefinition((MethodDefinitionHandle)handle);
                    collector.Found.Add(method.GetDeclaringType());
                    method.DecodeSignature(collector, null);
                    break;
                case HandleKind.FieldDefinition:
                    var field = md.GetFieldDefinition((FieldDefinitionHandle)handle);
                    collector.Found.Add(field.GetDeclaringType());
                    field.DecodeSignature(collector, null);
                    break;
                case HandleKind.MemberReference:
                    var member = md.GetMemberReference((MemberReferenceHandle)handle);
                    Entity(member.Parent);
                    if (member.GetKind() == MemberReferenceKind.Method)
                        member.DecodeMethodSignature(collector, null);
                    else
                        member.DecodeFieldSignature(collector, null);
                    break;
                case HandleKind.MethodSpecification:
                    var spec = md.GetMethodSpecification((MethodSpecificationHandle)handle);
                    Entity(spec.Method);
                    spec.DecodeSignature(collector, null);
                    break;
                case HandleKind.StandaloneSignature:
                    var sig = md.GetStandaloneSignature((StandaloneSignatureHandle)handle);
                    if (sig.GetKind() == StandaloneSignatureKind.Method)
                        sig.DecodeMethodSignature(collector, null);
                    else
                        sig.DecodeLocalSignature(collector, null);
                    break;
                // TypeReference: a type in another assembly, never one of ours.
            }
        }
    }

    /// <summary>Decodes signatures only to note which of our type definitions they name.</summary>
    private sealed class Collector(MetadataReader md) : ISignatureTypeProvider<bool, object?>
    {
        public HashSet<TypeDefinitionHandle> Found { get; } = [];

        public bool GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind)
        {
            Found.Add(handle);
            return true;
        }

        public bool GetTypeFromSpecification(MetadataReader reader, object? context,
            TypeSpecificationHandle handle, byte rawTypeKind)
        {
            md.GetTypeSpecification(handle).DecodeSignature(this, context);
            return true;
        }

        public bool GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => true;
        public bool GetPrimitiveType(PrimitiveTypeCode typeCode) => true;
        public bool GetSZArrayType(bool elementType) => true;
        public bool GetArrayType(bool elementType, ArrayShape shape) => true;
        public bool GetByReferenceType(bool elementType) => true;
        public bool GetPointerType(bool elementType) => true;
        public bool GetPinnedType(bool elementType) => true;
        public bool GetGenericInstantiation(bool genericType, ImmutableArray<bool> typeArguments) => true;
        public bool GetGenericMethodParameter(object? context, int index) => true;
        public bool GetGenericTypeParameter(object? context, int index) => true;
        public bool GetFunctionPointerType(MethodSignature<bool> signature) => true;
        public bool GetModifiedType(bool modifier, bool unmodifiedType, bool isRequired) => true;
    }
}

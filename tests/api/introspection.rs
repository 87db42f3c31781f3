//! What a client gets by introspection equals `schema.graphql`: codegen, Rover and
//! `get-graphql-schema` print an introspected schema, and SDKs are built from the file, so
//! the two must describe the same schema, description for description.
//!
//! Both sides are printed into one canonical form, sorted (types, fields, arguments, enum
//! values, union members, interfaces), and compared type by type. The file goes through a
//! GraphQL parser, the server's answer through the standard introspection query: neither
//! side is the text async-graphql printed. The directives the spec defines (`@skip`,
//! `@include`, `@deprecated`, `@specifiedBy`, `@oneOf`) are left out on both sides, as
//! graphql-js' `printSchema` leaves them out.
use std::collections::BTreeMap;

use async_graphql::parser::{
    parse_schema,
    types::{
        ConstDirective, FieldDefinition, InputValueDefinition, TypeKind, TypeSystemDefinition,
    },
};
use serde_json::Value;

use crate::helpers::*;

const INTROSPECTION: &str = include_str!("../fixtures/introspection.graphql");
const SPEC_DIRECTIVES: [&str; 5] = ["skip", "include", "deprecated", "specifiedBy", "oneOf"];
const SPEC_SCALARS: [&str; 5] = ["Int", "Float", "String", "Boolean", "ID"];

/// Each type (and `schema`, and each directive of our own) by name, printed canonically.
type Printed = BTreeMap<String, String>;

#[tokio::test]
async fn introspection_equals_the_committed_schema() {
    let app = spawn_app(&Backend::Sqlite).await;
    let answer = app.query(INTROSPECTION).await;
    let schema = &answer.ok()["__schema"];
    // Not the description of async-graphql's `__Schema` meta-type: this schema has none.
    assert_eq!(schema["description"], Value::Null);

    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql");
    let file = print_file(&committed);
    let served = print_introspection(schema);
    let names = |p: &Printed| p.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&file),
        names(&served),
        "the same types and directives"
    );
    for (name, printed) in &file {
        assert_eq!(
            printed, &served[name],
            "`{name}`: schema.graphql, then introspection"
        );
    }
    // A check that the comparison compares: the file's scalar carries its specification.
    assert!(
        file["DateTime"].contains("@specifiedBy(url: \""),
        "{}",
        file["DateTime"]
    );
}

// ---- one canonical form ----

fn description(text: Option<&str>) -> String {
    text.map(|d| format!(" \"{}\"", d.trim().escape_default()))
        .unwrap_or_default()
}

fn deprecated(reason: Option<&str>) -> String {
    reason
        .map(|r| format!(" @deprecated(reason: \"{}\")", r.escape_default()))
        .unwrap_or_default()
}

fn argument(name: &str, ty: &str, default: Option<&str>, desc: Option<&str>) -> String {
    let default = default.map(|d| format!(" = {d}")).unwrap_or_default();
    format!("{name}: {ty}{default}{}", description(desc))
}

fn field(
    name: &str,
    mut args: Vec<String>,
    ty: &str,
    desc: Option<&str>,
    dep: Option<&str>,
) -> String {
    args.sort();
    let args = if args.is_empty() {
        String::new()
    } else {
        format!("({})", args.join(", "))
    };
    format!(
        "  {name}{args}: {ty}{}{}",
        description(desc),
        deprecated(dep)
    )
}

fn definition(head: String, desc: Option<&str>, mut members: Vec<String>) -> String {
    members.sort();
    let mut out = format!("{head}{}", description(desc));
    for m in members {
        out.push('\n');
        out.push_str(&m);
    }
    out
}

// ---- the file ----

fn print_file(sdl: &str) -> Printed {
    let document = parse_schema(sdl).expect("schema.graphql parses");
    let mut printed = Printed::new();
    for definition_ in document.definitions {
        match definition_ {
            TypeSystemDefinition::Schema(schema) => {
                let schema = schema.node;
                let root = |n: &Option<async_graphql::Positioned<async_graphql::Name>>| {
                    n.as_ref().map(|n| n.node.to_string()).unwrap_or_default()
                };
                printed.insert(
                    "schema".into(),
                    format!(
                        "schema query: {} mutation: {} subscription: {}",
                        root(&schema.query),
                        root(&schema.mutation),
                        root(&schema.subscription)
                    ),
                );
            }
            TypeSystemDefinition::Directive(directive) => {
                let d = directive.node;
                if SPEC_DIRECTIVES.contains(&d.name.node.as_str()) {
                    continue;
                }
                let mut locations: Vec<String> = d
                    .locations
                    .iter()
                    .map(|l| format!("{:?}", l.node))
                    .collect();
                locations.sort();
                let args = d.arguments.iter().map(|a| file_argument(&a.node)).collect();
                let head = format!(
                    "directive @{}{} on {}",
                    d.name.node,
                    if d.is_repeatable { " repeatable" } else { "" },
                    locations.join(" | ")
                );
                printed.insert(
                    format!("@{}", d.name.node),
                    definition(head, d.description.as_ref().map(|d| d.node.as_str()), args),
                );
            }
            TypeSystemDefinition::Type(ty) => {
                let ty = ty.node;
                let name = ty.name.node.to_string();
                let desc = ty.description.as_ref().map(|d| d.node.as_str());
                let (head, members) = match &ty.kind {
                    TypeKind::Scalar => {
                        let url = ty
                            .directives
                            .iter()
                            .find(|d| d.node.name.node == "specifiedBy")
                            .and_then(|d| d.node.get_argument("url"))
                            .map(|url| format!(" @specifiedBy(url: {})", url.node))
                            .unwrap_or_default();
                        (format!("SCALAR {name}{url}"), vec![])
                    }
                    TypeKind::Object(o) => (
                        implementing(
                            "OBJECT",
                            &name,
                            o.implements.iter().map(|i| i.node.to_string()),
                        ),
                        o.fields.iter().map(|f| file_field(&f.node)).collect(),
                    ),
                    TypeKind::Interface(i) => (
                        implementing(
                            "INTERFACE",
                            &name,
                            i.implements.iter().map(|i| i.node.to_string()),
                        ),
                        i.fields.iter().map(|f| file_field(&f.node)).collect(),
                    ),
                    TypeKind::Union(u) => (
                        format!("UNION {name}"),
                        u.members
                            .iter()
                            .map(|m| format!("  | {}", m.node))
                            .collect(),
                    ),
                    TypeKind::Enum(e) => (
                        format!("ENUM {name}"),
                        e.values
                            .iter()
                            .map(|v| {
                                let v = &v.node;
                                format!(
                                    "  {}{}{}",
                                    v.value.node,
                                    description(v.description.as_ref().map(|d| d.node.as_str())),
                                    deprecated(deprecation(&v.directives).as_deref())
                                )
                            })
                            .collect(),
                    ),
                    TypeKind::InputObject(i) => (
                        format!("INPUT_OBJECT {name}"),
                        i.fields
                            .iter()
                            .map(|f| format!("  {}", file_argument(&f.node)))
                            .collect(),
                    ),
                };
                printed.insert(name, definition(head, desc, members));
            }
        }
    }
    printed
}

fn implementing(kind: &str, name: &str, interfaces: impl Iterator<Item = String>) -> String {
    let mut interfaces: Vec<String> = interfaces.collect();
    interfaces.sort();
    if interfaces.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {name} implements {}", interfaces.join(" & "))
    }
}

fn deprecation(directives: &[async_graphql::Positioned<ConstDirective>]) -> Option<String> {
    let directive = directives
        .iter()
        .find(|d| d.node.name.node == "deprecated")?;
    Some(match directive.node.get_argument("reason") {
        Some(async_graphql::Positioned {
            node: async_graphql::Value::String(reason),
            ..
        }) => reason.clone(),
        _ => "No longer supported".to_owned(),
    })
}

fn file_argument(a: &InputValueDefinition) -> String {
    let default = a.default_value.as_ref().map(|d| d.node.to_string());
    argument(
        &a.name.node,
        &a.ty.node.to_string(),
        default.as_deref(),
        a.description.as_ref().map(|d| d.node.as_str()),
    )
}

fn file_field(f: &FieldDefinition) -> String {
    field(
        &f.name.node,
        f.arguments.iter().map(|a| file_argument(&a.node)).collect(),
        &f.ty.node.to_string(),
        f.description.as_ref().map(|d| d.node.as_str()),
        deprecation(&f.directives).as_deref(),
    )
}

// ---- the server's answer ----

fn print_introspection(schema: &Value) -> Printed {
    let mut printed = Printed::new();
    let root = |key: &str| schema[key]["name"].as_str().unwrap_or_default().to_owned();
    printed.insert(
        "schema".into(),
        format!(
            "schema query: {} mutation: {} subscription: {}",
            root("queryType"),
            root("mutationType"),
            root("subscriptionType")
        ),
    );
    for d in schema["directives"].as_array().expect("directives") {
        let name = d["name"].as_str().unwrap();
        if SPEC_DIRECTIVES.contains(&name) {
            continue;
        }
        let mut locations: Vec<String> = d["locations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| pascal(l.as_str().unwrap()))
            .collect();
        locations.sort();
        let head = format!(
            "directive @{name}{} on {}",
            if d["isRepeatable"] == true {
                " repeatable"
            } else {
                ""
            },
            locations.join(" | ")
        );
        let args = d["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(served_argument)
            .collect();
        printed.insert(
            format!("@{name}"),
            definition(head, d["description"].as_str(), args),
        );
    }
    for ty in schema["types"].as_array().expect("types") {
        let name = ty["name"].as_str().unwrap().to_owned();
        if name.starts_with("__") || SPEC_SCALARS.contains(&name.as_str()) {
            continue;
        }
        let list = |key: &str| ty[key].as_array().cloned().unwrap_or_default();
        let interfaces = || {
            list("interfaces")
                .into_iter()
                .map(|i| i["name"].as_str().unwrap().to_owned())
        };
        let fields = || list("fields").iter().map(served_field).collect::<Vec<_>>();
        let kind = ty["kind"].as_str().unwrap();
        let (head, members) = match kind {
            "SCALAR" => {
                let url = ty["specifiedByURL"]
                    .as_str()
                    .map(|url| format!(" @specifiedBy(url: {})", Value::from(url)))
                    .unwrap_or_default();
                (format!("SCALAR {name}{url}"), vec![])
            }
            "OBJECT" | "INTERFACE" => (implementing(kind, &name, interfaces()), fields()),
            "UNION" => (
                format!("UNION {name}"),
                list("possibleTypes")
                    .iter()
                    .map(|m| format!("  | {}", m["name"].as_str().unwrap()))
                    .collect(),
            ),
            "ENUM" => (
                format!("ENUM {name}"),
                list("enumValues")
                    .iter()
                    .map(|v| {
                        format!(
                            "  {}{}{}",
                            v["name"].as_str().unwrap(),
                            description(v["description"].as_str()),
                            deprecated(v["deprecationReason"].as_str())
                        )
                    })
                    .collect(),
            ),
            "INPUT_OBJECT" => (
                format!("INPUT_OBJECT {name}"),
                list("inputFields")
                    .iter()
                    .map(|f| format!("  {}", served_argument(f)))
                    .collect(),
            ),
            other => panic!("unknown kind {other}"),
        };
        printed.insert(name, definition(head, ty["description"].as_str(), members));
    }
    printed
}

fn type_ref(ty: &Value) -> String {
    match ty["kind"].as_str().unwrap() {
        "NON_NULL" => format!("{}!", type_ref(&ty["ofType"])),
        "LIST" => format!("[{}]", type_ref(&ty["ofType"])),
        _ => ty["name"].as_str().unwrap().to_owned(),
    }
}

fn served_argument(a: &Value) -> String {
    argument(
        a["name"].as_str().unwrap(),
        &type_ref(&a["type"]),
        a["defaultValue"].as_str(),
        a["description"].as_str(),
    )
}

fn served_field(f: &Value) -> String {
    field(
        f["name"].as_str().unwrap(),
        f["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(served_argument)
            .collect(),
        &type_ref(&f["type"]),
        f["description"].as_str(),
        f["deprecationReason"].as_str(),
    )
}

/// `FRAGMENT_SPREAD` as the parser's `Debug` prints a location: `FragmentSpread`.
fn pascal(location: &str) -> String {
    location
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|c| c.to_string()).unwrap_or_default() + &chars.as_str().to_lowercase()
        })
        .collect()
}

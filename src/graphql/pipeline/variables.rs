//! Variable coercion, as the GraphQL spec orders it: after validation, before execution, each
//! variable of the selected operation against its declared type. async-graphql checks variable
//! values only where they are used as arguments, and reports failures as validation errors;
//! clients need `BAD_USER_INPUT` for bad variables and `GRAPHQL_VALIDATION_FAILED` for bad
//! documents, and a missing required variable must fail even if unused.
use async_graphql::{
    ServerError, Value as ConstValue, Variables,
    parser::types::OperationDefinition,
    registry::{MetaType, MetaTypeName, Registry},
};

/// The coercion errors of `op`'s variables (empty when all coerce).
pub fn coercion_errors(
    registry: &Registry,
    op: &OperationDefinition,
    variables: &Variables,
) -> Vec<ServerError> {
    let mut errors = Vec::new();
    for def in &op.variable_definitions {
        let name = def.node.name.node.as_str();
        let ty = def.node.var_type.node.to_string();
        let problem = match variables.get(&def.node.name.node) {
            None if !def.node.var_type.node.nullable && def.node.default_value.is_none() => Some(
                format!("variable \"${name}\" of required type \"{ty}\" was not provided"),
            ),
            None => None,
            Some(value) => check(registry, &ty, value, name)
                .map(|reason| format!("variable \"${name}\" got an invalid value: {reason}")),
        };
        if let Some(message) = problem {
            let mut err = ServerError::new(message, Some(def.pos));
            err.extensions
                .get_or_insert_with(Default::default)
                .set("field", name);
            errors.push(err);
        }
    }
    errors
}

/// Why `value` is not a valid `type_name` (at `path`), or `None` if it is.
fn check(registry: &Registry, type_name: &str, value: &ConstValue, path: &str) -> Option<String> {
    match MetaTypeName::create(type_name) {
        MetaTypeName::NonNull(inner) => match value {
            ConstValue::Null => Some(format!("{path} must not be null")),
            _ => check(registry, inner, value, path),
        },
        MetaTypeName::List(inner) => match value {
            ConstValue::Null => None,
            ConstValue::List(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| check(registry, inner, item, &format!("{path}[{i}]"))),
            // Input coercion wraps a single value in a list.
            _ => check(registry, inner, value, path),
        },
        MetaTypeName::Named(name) => {
            if matches!(value, ConstValue::Null) {
                return None;
            }
            let expected = || Some(format!("{path} must be of type {name}"));
            match registry.types.get(name) {
                Some(MetaType::Scalar { is_valid, .. }) => match is_valid {
                    Some(valid) if !valid(value) => expected(),
                    _ => None,
                },
                Some(MetaType::Enum { enum_values, .. }) => match value {
                    ConstValue::Enum(v) if enum_values.contains_key(v.as_str()) => None,
                    ConstValue::String(v) if enum_values.contains_key(v.as_str()) => None,
                    _ => expected(),
                },
                Some(MetaType::InputObject { input_fields, .. }) => {
                    let ConstValue::Object(fields) = value else {
                        return expected();
                    };
                    if let Some(unknown) = fields
                        .keys()
                        .find(|k| !input_fields.contains_key(k.as_str()))
                    {
                        return Some(format!("{path} has no field {unknown}"));
                    }
                    input_fields.values().find_map(|field| {
                        let field_path = format!("{path}.{}", field.name);
                        match fields.get(field.name.as_str()) {
                            Some(v) => check(registry, &field.ty, v, &field_path),
                            None if MetaTypeName::create(&field.ty).is_non_null()
                                && field.default_value.is_none() =>
                            {
                                Some(format!("{field_path} is required"))
                            }
                            None => None,
                        }
                    })
                }
                // Not an input type: validation reports the variable's declaration.
                _ => None,
            }
        }
    }
}

//! `/openapi.json`, generated from the registry: every command with its body schema (derived from
//! the domain's payload types) and every query with its index filters.

use crate::app::AppState;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, Required,
    ResponseBuilder,
};

fn string_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

fn problem(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
        )
        .build()
}

pub fn document(state: &AppState) -> OpenApi {
    let mut paths = PathsBuilder::new();
    let mut components = ComponentsBuilder::new().schema(
        "Problem",
        ObjectBuilder::new()
            .property("type", ObjectBuilder::new().schema_type(Type::String))
            .property("title", ObjectBuilder::new().schema_type(Type::String))
            .property("status", ObjectBuilder::new().schema_type(Type::Integer))
            .property("detail", ObjectBuilder::new().schema_type(Type::String)),
    );
    components = components.schema(
        "CommandResult",
        ObjectBuilder::new()
            .property("stream", ObjectBuilder::new().schema_type(Type::String))
            .property("version", ObjectBuilder::new().schema_type(Type::Integer))
            .property(
                "position",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .description(Some("Consistency token: pass as ?after= to read your write")),
            )
            .property("events", ObjectBuilder::new().schema_type(Type::Array))
            .property("result", ObjectBuilder::new().schema_type(Type::Object)),
    );
    let mut commands: Vec<_> = state.commands.values().collect();
    commands.sort_by_key(|c| (c.context, c.name));
    for c in commands {
        let (schema_name, schema) = c.body_schema.clone();
        components = components.schema(schema_name.clone(), schema);
        for (n, s) in &c.nested_schemas {
            components = components.schema(n.clone(), s.clone());
        }
        let op = OperationBuilder::new()
            .tag(c.context)
            .operation_id(Some(format!("{}-{}", c.context, c.name)))
            .summary(Some(c.name))
            .description(Some(format!("Who: {}.", c.who)))
            .parameter(
                ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some("The same key again returns the first answer without writing."))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            )
            .parameter(
                ParameterBuilder::new()
                    .name("If-Match")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some("Expected stream version."))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Integer))),
            )
            .request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(Ref::from_schema_name(schema_name))).build(),
                    )
                    .build(),
            ))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("Accepted: the events written")
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(Ref::from_schema_name("CommandResult"))).build(),
                    )
                    .build(),
            )
            .response("400", problem("Malformed JSON"))
            .response("401", problem("Not signed in"))
            .response("403", problem("Not allowed"))
            .response("404", problem("Unknown aggregate"))
            .response("409", problem("Refused in the current state"))
            .response("422", problem("Invalid field"))
            .build();
        paths = paths.path(format!("/v1/{}/commands/{}", c.context, c.name), PathItem::new(HttpMethod::Post, op));
    }
    for doc in &state.route_docs {
        let op = OperationBuilder::new()
            .tag(doc.path.split('/').nth(2).unwrap_or("other"))
            .summary(Some(doc.summary))
            .description(Some(doc.description))
            .response("200", ResponseBuilder::new().description("Done").build())
            .response("400", problem("Malformed or refused"))
            .response("401", problem("Not signed in, or a bad signature"))
            .response("404", problem("Not found"))
            .build();
        paths = paths.path(doc.path, PathItem::new(doc.method.clone(), op));
    }
    let mut tables: Vec<_> = state.tables.values().collect();
    tables.sort_by_key(|(t, _)| (t.context, t.name));
    for (t, def) in tables {
        let mut op = OperationBuilder::new()
            .tag(t.context)
            .operation_id(Some(format!("list-{}-{}", t.context, t.name)))
            .summary(Some(format!("List {} by an index", t.name)))
            .description(Some(format!(
                "Filter on a leading part of one index: {}. `Accept: text/event-stream` streams updates.",
                def.indexes
                    .iter()
                    .map(|i| format!("{}({})", i.name, i.columns.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; ")
            )))
            .parameter(string_param("limit", "Page size (1-500, default 50)"))
            .parameter(string_param("cursor", "From the previous page's nextCursor"))
            .parameter(string_param("order", "asc or desc"))
            .parameter(string_param("after", "A command's position: wait until this read reflects it"));
        let mut seen = std::collections::HashSet::new();
        for index in &def.indexes {
            for c in &index.columns {
                if seen.insert(c.clone()) {
                    op = op.parameter(string_param(
                        &projections::query::camel_case(c),
                        &format!("Equality filter (index {})", index.name),
                    ));
                }
            }
        }
        let op = op
            .response("200", ResponseBuilder::new().description("A page: {items, nextCursor, index}").build())
            .response("400", problem("A filter no index serves"))
            .build();
        paths = paths.path(format!("/v1/{}/{}", t.context, t.name), PathItem::new(HttpMethod::Get, op));
        let get = OperationBuilder::new()
            .tag(t.context)
            .operation_id(Some(format!("get-{}-{}", t.context, t.name)))
            .response("200", ResponseBuilder::new().description("The row").build())
            .response("404", problem("Unknown, or not yours to see"))
            .build();
        paths = paths.path(format!("/v1/{}/{}/{{id}}", t.context, t.name), PathItem::new(HttpMethod::Get, get));
    }
    for (path, summary) in [
        ("/v1/audit/streams/{stream}", "A stream's history with metadata and hashes (admins)"),
        ("/v1/audit/streams/{stream}/state", "State as of ?version= or ?at= (admins)"),
        ("/v1/audit/log", "The audit log read table (admins)"),
        ("/v1/audit/verify", "Walk every hash chain (admins)"),
        ("/v1/admin/projections", "Projector status and lag (admins)"),
    ] {
        let op = OperationBuilder::new()
            .tag("operations")
            .summary(Some(summary))
            .response("200", ResponseBuilder::new().description("OK").build())
            .build();
        paths = paths.path(path, PathItem::new(HttpMethod::Get, op));
    }
    for (path, summary) in [
        ("/v1/admin/projections/{name}/rebuild", "Rebuild into fresh tables, then swap (admins)"),
        ("/v1/admin/projections/{name}/resume", "Resume a stalled projector (admins)"),
    ] {
        let op = OperationBuilder::new()
            .tag("operations")
            .summary(Some(summary))
            .response("202", ResponseBuilder::new().description("Started").build())
            .build();
        paths = paths.path(path, PathItem::new(HttpMethod::Post, op));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Escrow backend")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Event-sourced CQRS backend: commands append events; queries read projections."))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .build()
}

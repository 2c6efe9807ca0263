//! Where the attribute applies: `fn main()`, sync or async, with no
//! arguments and no generics, returning `()` or `Result<(), E>`.

use syn::spanned::Spanned;
use syn::{Item, ItemFn, ReturnType, Type};

/// What the attribute supports, repeated in every placement error.
pub(crate) const SUPPORTED: &str = "#[apr_lambda] goes on `fn main()` only: sync or async, \
     with no arguments and no generics, returning `()` or `Result<(), E>`";

/// Checks that `item` is a `main` the attribute can wrap, and returns it.
///
/// On failure, also returns the item itself when it is a function not named
/// `main`, so the expansion can keep it (only the attribute is wrong).
pub(crate) fn check(item: Item) -> Result<ItemFn, (syn::Error, Option<Box<Item>>)> {
    let function = match item {
        Item::Fn(function) => function,
        other => {
            let error = syn::Error::new(
                item_span(&other),
                format!("{SUPPORTED}; it cannot be put on {}", describe(&other)),
            );
            return Err((error, Some(Box::new(other))));
        }
    };
    if function.sig.ident != "main" {
        let error = syn::Error::new(
            function.sig.ident.span(),
            format!(
                "{SUPPORTED}; found `fn {}`. Put the attribute on the binary's `main`",
                function.sig.ident
            ),
        );
        return Err((error, Some(Box::new(Item::Fn(function)))));
    }
    let sig = &function.sig;
    let mut errors: Option<syn::Error> = None;
    let mut fail = |error: syn::Error| match &mut errors {
        Some(existing) => existing.combine(error),
        None => errors = Some(error),
    };
    if !sig.inputs.is_empty() || sig.variadic.is_some() {
        fail(syn::Error::new(
            sig.inputs.span(),
            format!(
                "{SUPPORTED}; this `main` takes arguments. Read events from the Lambda runtime, \
                 not from `main`'s parameters"
            ),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        fail(syn::Error::new_spanned(
            &sig.generics,
            format!("{SUPPORTED}; this `main` is generic"),
        ));
    }
    if let Some(constness) = &sig.constness {
        fail(syn::Error::new(
            constness.span(),
            format!("{SUPPORTED}; a `const fn main` is not"),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        fail(syn::Error::new(
            unsafety.span(),
            format!("{SUPPORTED}; an `unsafe fn main` is not"),
        ));
    }
    if let Some(abi) = &sig.abi {
        fail(syn::Error::new_spanned(
            abi,
            format!("{SUPPORTED}; an `extern` main is not"),
        ));
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if !is_unit_or_result(ty) {
            fail(syn::Error::new_spanned(
                ty,
                format!("{SUPPORTED}; this `main` returns another type"),
            ));
        }
    }
    match errors {
        Some(error) => Err((error, None)),
        None => Ok(function),
    }
}

/// `()`, or a path type whose last segment is `Result` (`Result<(), E>`,
/// `io::Result<()>`, `anyhow::Result<()>`). The generated code checks the
/// rest through a trait bound.
fn is_unit_or_result(ty: &Type) -> bool {
    match ty {
        Type::Tuple(tuple) => tuple.elems.is_empty(),
        Type::Paren(paren) => is_unit_or_result(&paren.elem),
        Type::Group(group) => is_unit_or_result(&group.elem),
        Type::Path(path) => {
            path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|segment| segment.ident == "Result")
        }
        _ => false,
    }
}

/// Where to point at an item that is not a function: its name when it has one.
fn item_span(item: &Item) -> proc_macro2::Span {
    match item {
        Item::Struct(s) => s.ident.span(),
        Item::Enum(e) => e.ident.span(),
        Item::Mod(m) => m.ident.span(),
        Item::Static(s) => s.ident.span(),
        Item::Const(c) => c.ident.span(),
        Item::Trait(t) => t.ident.span(),
        Item::Type(t) => t.ident.span(),
        Item::Union(u) => u.ident.span(),
        other => other.span(),
    }
}

/// "a struct", "an impl block", ... for the placement error.
fn describe(item: &Item) -> &'static str {
    match item {
        Item::Struct(_) => "a struct",
        Item::Enum(_) => "an enum",
        Item::Mod(_) => "a module",
        Item::Static(_) => "a static",
        Item::Const(_) => "a const",
        Item::Trait(_) | Item::TraitAlias(_) => "a trait",
        Item::Type(_) => "a type alias",
        Item::Union(_) => "a union",
        Item::Impl(_) => "an impl block",
        Item::Use(_) => "a `use` declaration",
        Item::ExternCrate(_) => "an `extern crate`",
        Item::ForeignMod(_) => "an `extern` block",
        Item::Macro(_) => "a macro invocation",
        _ => "this item",
    }
}

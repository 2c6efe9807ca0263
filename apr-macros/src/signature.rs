//! Where the attribute applies: `fn main()` (sync or async, with no
//! arguments and no generics, returning `()` or `Result<(), E>`), or a
//! handler function `[async] fn NAME(request: T, model: &Model[, context:
//! &Context]) -> Result<R, E>`.

use syn::spanned::Spanned;
use syn::{FnArg, Item, ItemFn, ReturnType, Signature, Type};

/// What the attribute supports, repeated in every placement error.
pub(crate) const SUPPORTED: &str = "#[apr_lambda] goes on `fn main()` (sync or async, \
     with no arguments and no generics, returning `()` or `Result<(), E>`) or on a handler \
     `[async] fn NAME(request: T, model: &apr_lambda::Model[, context: &apr_lambda::Context]) \
     -> Result<R, E>`";

/// The handler signature, repeated in every handler error.
const HANDLER: &str = "a handler is `[async] fn NAME(request: T, model: &apr_lambda::Model) \
     -> Result<R, E>`, optionally with a third parameter `context: &apr_lambda::Context`";

/// What the attribute is on.
pub(crate) enum Entry {
    /// `fn main`: its body runs once, then the default protocol is served.
    Main(ItemFn),
    /// A handler function, served by a generated `main`.
    Handler {
        /// The function, kept as written.
        function: ItemFn,
        /// Whether it takes the invocation's context (a third parameter).
        takes_context: bool,
    },
}

/// Checks that `item` is a `main` or a handler the attribute can serve.
///
/// On failure, also gives the item back, so the expansion can keep it next
/// to the error (only the attribute, or its signature, is wrong).
pub(crate) fn check(item: Item) -> Result<Entry, (syn::Error, Box<Item>)> {
    let function = match item {
        Item::Fn(function) => function,
        other => {
            let error = syn::Error::new(
                item_span(&other),
                format!("{SUPPORTED}; it cannot be put on {}", describe(&other)),
            );
            return Err((error, Box::new(other)));
        }
    };
    if function.sig.ident != "main" {
        return match check_handler(&function.sig) {
            Ok(takes_context) => Ok(Entry::Handler {
                function,
                takes_context,
            }),
            Err(error) => Err((error, Box::new(Item::Fn(function)))),
        };
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
                "{SUPPORTED}; this `main` takes arguments. To take each request as a \
                 parameter, put the attribute on a handler function with another name \
                 (the macro then generates `main`)"
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
        Some(error) => Err((error, Box::new(Item::Fn(function)))),
        None => Ok(Entry::Main(function)),
    }
}

/// Checks a handler's signature; `Ok(true)` when it takes a context.
fn check_handler(sig: &Signature) -> syn::Result<bool> {
    let mut errors: Option<syn::Error> = None;
    let mut fail = |error: syn::Error| match &mut errors {
        Some(existing) => existing.combine(error),
        None => errors = Some(error),
    };
    // Lifetime parameters are fine (`&'m Model`): the model lives as long
    // as the process. Type and const parameters are not.
    let generic = sig
        .generics
        .params
        .iter()
        .any(|param| !matches!(param, syn::GenericParam::Lifetime(_)));
    if generic || sig.generics.where_clause.is_some() {
        fail(syn::Error::new_spanned(
            &sig.generics,
            format!(
                "{HANDLER}; this one is generic, but the macro must know the request and \
                 answer types to decode and encode them"
            ),
        ));
    }
    if let Some(constness) = &sig.constness {
        fail(syn::Error::new(
            constness.span(),
            format!("{HANDLER}; a `const fn` is not"),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        fail(syn::Error::new(
            unsafety.span(),
            format!("{HANDLER}; an `unsafe fn` is not"),
        ));
    }
    if let Some(abi) = &sig.abi {
        fail(syn::Error::new_spanned(
            abi,
            format!("{HANDLER}; an `extern` fn is not"),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        fail(syn::Error::new_spanned(
            variadic,
            format!("{HANDLER}; a variadic fn is not"),
        ));
    }
    let count = sig.inputs.len();
    if !(2..=3).contains(&count) {
        let span = if count == 0 {
            sig.paren_token.span.join()
        } else {
            sig.inputs.span()
        };
        fail(syn::Error::new(
            span,
            format!(
                "{HANDLER}; `{}` takes {count} parameter{}",
                sig.ident,
                if count == 1 { "" } else { "s" }
            ),
        ));
    }
    for (position, input) in sig.inputs.iter().enumerate() {
        let ty = match input {
            FnArg::Receiver(receiver) => {
                fail(syn::Error::new_spanned(
                    receiver,
                    format!("{HANDLER}; a handler is a free function, without `self`"),
                ));
                continue;
            }
            FnArg::Typed(typed) => &*typed.ty,
        };
        match position {
            0 => {
                if let Type::Reference(_) = ty {
                    fail(syn::Error::new_spanned(
                        ty,
                        format!(
                            "{HANDLER}; the request is decoded anew for each event and given \
                             to the handler: take it by value, as `request: T` with \
                             `T: serde::Deserialize`"
                        ),
                    ));
                }
                if let Type::ImplTrait(_) = ty {
                    fail(syn::Error::new_spanned(
                        ty,
                        format!(
                            "{HANDLER}; an `impl Trait` request is generic, but the macro must \
                             know the type to decode each event into: name a concrete type"
                        ),
                    ));
                }
            }
            1 => check_shared_reference(
                ty,
                "the model is shared by every invocation",
                "model: &apr_lambda::Model",
                &mut fail,
            ),
            2 => check_shared_reference(
                ty,
                "the context is lent to the handler for its invocation",
                "context: &apr_lambda::Context",
                &mut fail,
            ),
            _ => {}
        }
    }
    match &sig.output {
        ReturnType::Default => fail(syn::Error::new(
            sig.paren_token.span.close(),
            format!(
                "{HANDLER}; `{}` returns nothing: return `Result<R, E>`, with the answer in \
                 `Ok` and any error in `Err`",
                sig.ident
            ),
        )),
        ReturnType::Type(_, ty) => {
            if !is_result(ty) {
                fail(syn::Error::new_spanned(
                    ty,
                    format!(
                        "{HANDLER}; this one returns another type: return `Result<R, E>`, \
                         with the answer in `Ok` and any error in `Err`"
                    ),
                ));
            }
        }
    }
    match errors {
        Some(error) => Err(error),
        None => Ok(count == 3),
    }
}

/// Fails unless `ty` is a shared reference (`&T`); `why` says why it must
/// be one, `example` shows the parameter.
fn check_shared_reference(ty: &Type, why: &str, example: &str, fail: &mut dyn FnMut(syn::Error)) {
    match ty {
        Type::Reference(reference) if reference.mutability.is_none() => {}
        Type::Reference(reference) => fail(syn::Error::new_spanned(
            reference,
            format!("{HANDLER}; {why}: take it as a shared reference, `{example}`, not `&mut`"),
        )),
        other => fail(syn::Error::new_spanned(
            other,
            format!("{HANDLER}; {why}: take it by reference, `{example}`"),
        )),
    }
}

/// A path type whose last segment is `Result` (`Result<R, E>`,
/// `anyhow::Result<R>`); the generated code checks the rest through trait
/// bounds.
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Paren(paren) => is_result(&paren.elem),
        Type::Group(group) => is_result(&group.elem),
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

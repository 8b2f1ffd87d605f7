//! Tests of the public API, the filters, tests and lookups as playbooks use them.

use std::fs;

use serde_json::json;

use super::{TemplateError, Templates};
use crate::vars::Value;

fn templates() -> Templates {
    Templates::new(std::path::Path::new("/nonexistent-convoy-test-dir"))
}

fn render(source: &str, vars: Value) -> String {
    templates()
        .render_str(source, &vars, "test")
        .unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn render_err(source: &str, vars: Value) -> String {
    match templates().render_str(source, &vars, "site.yml:3:5") {
        Ok(out) => panic!("{source} rendered {out:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn templates_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Templates>();
}

#[test]
fn plain_strings_bypass_the_engine() {
    // Invalid Jinja would fail if it went through the engine; without markers it cannot.
    assert_eq!(render("just text } {", json!({})), "just text } {");
    let value = json!({"a": ["x", 1, true], "b": "plain"});
    assert_eq!(
        templates().render_value(&value, &json!({}), "t").unwrap(),
        value
    );
}

#[test]
fn renders_with_ansible_whitespace_rules() {
    assert_eq!(render("a={{ a }}\n", json!({"a": 1})), "a=1\n");
    // trim_blocks: the newline after a block tag goes; lstrip_blocks off: indentation stays.
    let src = "{% for x in xs %}\n  {{ x }}\n{% endfor %}\n";
    assert_eq!(render(src, json!({"xs": [1, 2]})), "  1\n  2\n");
    // ansible-core's templar finalizes none to nothing.
    assert_eq!(render("{{ v }}", json!({"v": null})), "");
    assert_eq!(render("{{ v }}", json!({"v": true})), "True");
}

#[test]
fn never_auto_escapes() {
    let vars = json!({"v": "<a & 'b'>"});
    for name in ["x.yml", "x.html", "x.json"] {
        let out = templates().render_str("{{ v }}", &vars, name).unwrap();
        assert_eq!(out, "<a & 'b'>", "{name}");
    }
}

#[test]
fn default_and_defined_work_under_strict_undefined() {
    let vars = json!({"app": {"port": 80}});
    assert_eq!(render("{{ missing | default('x') }}", vars.clone()), "x");
    assert_eq!(render("{{ missing | d('y') }}", vars.clone()), "y");
    assert_eq!(render("{{ app.nope | default(8) }}", vars.clone()), "8");
    assert_eq!(render("{{ missing is defined }}", vars.clone()), "False");
    assert_eq!(render("{{ missing is undefined }}", vars.clone()), "True");
    assert_eq!(render("{{ app.port is defined }}", vars.clone()), "True");
    assert_eq!(render("{{ 'port' in app }}", vars), "True");
}

#[test]
fn undefined_variable_is_named() {
    let vars = json!({"app": {"port": 80}, "items": [{"a": 1}]});
    assert_eq!(
        render_err("x {{ missing }}", vars.clone()),
        "undefined variable `missing` in site.yml:3:5"
    );
    assert_eq!(
        render_err("{{ app.missing_attr }}", vars.clone()),
        "undefined variable `app.missing_attr` in site.yml:3:5"
    );
    assert_eq!(
        render_err("{{ missing | upper }}", vars.clone()),
        "undefined variable `missing` in site.yml:3:5"
    );
    assert_eq!(
        render_err("{{ app.port + other }}", vars.clone()),
        "undefined variable `other` in site.yml:3:5"
    );
    assert_eq!(
        render_err("{% for i in items %}{{ i.b }}{% endfor %}", vars.clone()),
        "undefined variable `i.b` in site.yml:3:5"
    );
    assert_eq!(
        render_err(
            "{% for i in items %}{{ i.a ~ nope }}{% endfor %}",
            vars.clone()
        ),
        "undefined variable `nope` in site.yml:3:5"
    );
    assert_eq!(
        render_err("{% if missing %}x{% endif %}", vars.clone()),
        "undefined variable `missing` in site.yml:3:5"
    );
    assert_eq!(
        render_err("line1\n{{ app['host'] }}", vars),
        "undefined variable `app.host` in site.yml:3:5 (template line 2)"
    );
}

#[test]
fn undefined_name_accessor() {
    let err = templates()
        .render_str("{{ res.stdout }}", &json!({}), "t")
        .unwrap_err();
    assert_eq!(err.undefined_name(), Some("res"));
    let err = templates()
        .render_str("{{ 1 + }}", &json!({}), "t")
        .unwrap_err();
    assert_eq!(err.undefined_name(), None);
}

#[test]
fn mandatory_names_the_variable() {
    assert_eq!(
        render_err("{{ token | mandatory }}", json!({})),
        "mandatory variable `token` not defined in site.yml:3:5"
    );
    assert_eq!(render("{{ t | mandatory }}", json!({"t": 1})), "1");
    let custom = render_err("{{ token | mandatory('set token!') }}", json!({}));
    assert_eq!(
        custom,
        "template error in site.yml:3:5: invalid operation: set token!"
    );
}

#[test]
fn other_errors_carry_origin_and_detail() {
    assert_eq!(
        render_err("{{ 1 + }}", json!({})),
        "template syntax error in site.yml:3:5: unexpected end of variable block"
    );
    assert_eq!(
        render_err("{{ 'a' | nofilter }}", json!({})),
        "template error in site.yml:3:5: unknown filter: filter nofilter is unknown"
    );
}

fn playbook_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("templates")).unwrap();
    fs::create_dir_all(dir.path().join("files")).unwrap();
    fs::write(
        dir.path().join("templates/app.conf.j2"),
        "# app\nname={{ name }}\nport={{ app_port }}\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("templates/ok.j2"),
        "{% include 'part.j2' %}end\n",
    )
    .unwrap();
    fs::write(dir.path().join("templates/part.j2"), "part {{ name }}\n").unwrap();
    fs::write(dir.path().join("templates/bad.j2"), "a\n{% if %}\n").unwrap();
    fs::write(dir.path().join("secret.txt"), "s3cret\n\n").unwrap();
    fs::write(dir.path().join("files/key.pub"), "ssh-ed25519 AAAA\n").unwrap();
    dir
}

#[test]
fn render_file_searches_templates_dir_and_keeps_trailing_newline() {
    let dir = playbook_dir();
    let t = Templates::new(dir.path());
    let vars = json!({"name": "web", "app_port": 8080});
    let want = "# app\nname=web\nport=8080\n";
    assert_eq!(t.render_file("templates/app.conf.j2", &vars).unwrap(), want);
    assert_eq!(t.render_file("app.conf.j2", &vars).unwrap(), want);
    assert_eq!(t.render_file("ok.j2", &vars).unwrap(), "part web\nend\n");
    assert_eq!(
        t.resolve("app.conf.j2"),
        Some(dir.path().join("templates/app.conf.j2"))
    );
    assert_eq!(t.resolve("nope.j2"), None);
}

#[test]
fn render_file_errors() {
    let dir = playbook_dir();
    let t = Templates::new(dir.path());
    let err = t
        .render_file("templates/missing.j2", &json!({}))
        .unwrap_err();
    assert!(matches!(err, TemplateError::NotFound { .. }));
    assert_eq!(
        err.to_string(),
        "template file not found: templates/missing.j2"
    );
    let err = t
        .render_file("templates/app.conf.j2", &json!({"name": "web"}))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "undefined variable `app_port` in templates/app.conf.j2:3"
    );
    let err = t.render_file("ok.j2", &json!({})).unwrap_err();
    assert_eq!(err.to_string(), "undefined variable `name` in part.j2:1");
    let err = t.render_file("bad.j2", &json!({})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template syntax error in bad.j2:2: unexpected end of block"
    );
}

#[test]
fn render_value_keeps_native_types() {
    let vars = json!({"ports": [80, 443], "on": true, "n": 2, "cfg": {"a": {"b": 1}}, "s": "5"});
    let value = json!({
        "list": "{{ ports }}",
        // Surrounding whitespace makes it text, as Ansible renders it.
        "flag": " {{ on }} ",
        "sum": "{{ n + 1 }}",
        "map": "{{ cfg.a }}",
        "str": "{{ s }}",
        "mixed": "port {{ ports[0] }}",
        "nested": ["{{ n }}", {"k": "{{ on and false }}"}],
        "other": 7,
    });
    let out = templates().render_value(&value, &vars, "t").unwrap();
    assert_eq!(
        out,
        json!({
            "list": [80, 443],
            "flag": " True ",
            "sum": 3,
            "map": {"b": 1},
            "str": "5",
            "mixed": "port 80",
            "nested": [2, {"k": false}],
            "other": 7,
        })
    );
    let err = templates()
        .render_value(&json!(["{{ nope }}"]), &vars, "site.yml:9:3")
        .unwrap_err();
    assert_eq!(err.to_string(), "undefined variable `nope` in site.yml:9:3");
}

#[test]
fn eval_takes_bare_and_wrapped_expressions() {
    let t = templates();
    let vars = json!({"result": {"rc": 2}, "xs": [1, 2], "yes_str": "yes", "no_str": "No"});
    assert_eq!(t.eval("result.rc != 0", &vars, "t").unwrap(), json!(true));
    assert_eq!(
        t.eval("{{ xs | map('string') | list }}", &vars, "t")
            .unwrap(),
        json!(["1", "2"])
    );
    assert_eq!(t.eval("xs", &vars, "t").unwrap(), json!([1, 2]));
    assert_eq!(
        t.eval("{{ result.rc }} == 2", &vars, "t").unwrap(),
        json!(true)
    );
    assert!(
        t.eval_bool("x is defined or xs | length > 1", &vars, "t")
            .unwrap()
    );
    assert!(!t.eval_bool("x is defined", &vars, "t").unwrap());
    assert!(t.eval_bool("yes_str", &vars, "t").unwrap());
    assert!(!t.eval_bool("no_str", &vars, "t").unwrap());
    assert!(!t.eval_bool("'off'", &vars, "t").unwrap());
    assert!(!t.eval_bool("''", &vars, "t").unwrap());
    assert!(t.eval_bool("'1'", &vars, "t").unwrap());
    assert!(!t.eval_bool("0", &vars, "t").unwrap());
}

#[test]
fn eval_errors_name_the_variable() {
    let t = templates();
    let vars = json!({"result": {"rc": 0}});
    let err = |expr: &str| t.eval(expr, &vars, "task 'x'").unwrap_err().to_string();
    assert_eq!(err("missing"), "undefined variable `missing` in task 'x'");
    assert_eq!(
        err("missing == 1"),
        "undefined variable `missing` in task 'x'"
    );
    assert_eq!(
        err("result.stdout == ''"),
        "undefined variable `result.stdout` in task 'x'"
    );
    assert_eq!(
        err("result.rc =="),
        "template syntax error in task 'x': unexpected end of input, expected expression"
    );
}

#[test]
fn lookup_env_and_file() {
    let dir = playbook_dir();
    let t = Templates::new(dir.path());
    let vars = json!({});
    let r = |s: &str| t.render_str(s, &vars, "t");
    // PATH is set in any environment the tests run in.
    assert_eq!(
        r("{{ lookup('env', 'PATH') }}").unwrap(),
        std::env::var("PATH").unwrap()
    );
    assert_eq!(
        r("[{{ lookup('env', 'CONVOY_SURELY_UNSET_VAR') }}]").unwrap(),
        "[]"
    );
    assert_eq!(
        r("{{ lookup('env', 'CONVOY_SURELY_UNSET_VAR', default='d') }}").unwrap(),
        "d"
    );
    assert_eq!(r("{{ lookup('file', 'secret.txt') }}").unwrap(), "s3cret");
    assert_eq!(
        r("{{ lookup('file', 'key.pub') }}").unwrap(),
        "ssh-ed25519 AAAA"
    );
    assert_eq!(
        r("{{ lookup('file', 'nope.txt') }}")
            .unwrap_err()
            .to_string(),
        "template error in t: invalid operation: lookup('file'): file not found: nope.txt"
    );
    // pipe runs in the playbook's directory.
    assert_eq!(
        r("{{ lookup('pipe', 'ls') }}").unwrap(),
        "files\nsecret.txt\ntemplates"
    );
    assert!(
        r("{{ lookup('password', 'x') }}")
            .unwrap_err()
            .to_string()
            .contains("not supported")
    );
}

#[test]
fn json_and_yaml_filters() {
    let vars = json!({"d": {"b": [1, "x"], "a": {"w": true, "z": null}}});
    assert_eq!(
        render("{{ d.a | to_json }}", vars.clone()),
        r#"{"w": true, "z": null}"#
    );
    assert_eq!(
        render("{{ [1, 'a'] | to_json }}", vars.clone()),
        r#"[1, "a"]"#
    );
    assert_eq!(
        render("{{ d | to_nice_json }}", vars.clone()),
        "{\n    \"a\": {\n        \"w\": true,\n        \"z\": null\n    },\n    \"b\": [\n        1,\n        \"x\"\n    ]\n}"
    );
    assert_eq!(
        render("{{ d | to_nice_json(indent=2) }}", json!({"d": {"k": []}})),
        "{\n  \"k\": []\n}"
    );
    assert_eq!(
        render("{{ d.a | to_yaml }}", vars.clone()),
        // PyYAML's flow style for a mapping of scalars (default_flow_style=None).
        "{w: true, z: null}\n"
    );
    assert_eq!(
        render("{{ d | to_nice_yaml }}", json!({"d": {"a": {"b": 1}}})),
        "a:\n    b: 1\n"
    );
    assert_eq!(
        render(
            "{{ (s | from_json).k[1] }}",
            json!({"s": r#"{"k": [1, 2]}"#})
        ),
        "2"
    );
    assert_eq!(
        render("{{ (s | from_yaml).k.j }}", json!({"s": "k:\n  j: deep\n"})),
        "deep"
    );
    assert!(render_err("{{ 'nope{' | from_json }}", json!({})).contains("from_json: invalid JSON"));
}

#[test]
fn string_filters() {
    let v = json!({});
    assert_eq!(
        render("{{ 'hello wörld' | b64encode }}", v.clone()),
        "aGVsbG8gd8O2cmxk"
    );
    assert_eq!(
        render("{{ 'aGVsbG8gd8O2cmxk' | b64decode }}", v.clone()),
        "hello wörld"
    );
    assert_eq!(
        render("{{ '/etc/nginx/nginx.conf' | basename }}", v.clone()),
        "nginx.conf"
    );
    assert_eq!(
        render("{{ '/etc/nginx/nginx.conf' | dirname }}", v.clone()),
        "/etc/nginx"
    );
    assert_eq!(render("{{ '/etc' | dirname }}", v.clone()), "/");
    assert_eq!(render("{{ 'file' | dirname }}", v.clone()), "");
    assert_eq!(render("{{ 'dir/' | basename }}", v.clone()), "");
    assert_eq!(
        render("{{ 'safe-word.txt' | quote }}", v.clone()),
        "safe-word.txt"
    );
    assert_eq!(
        render("{{ \"it's $x\" | quote }}", v.clone()),
        r#"'it'"'"'s $x'"#
    );
    assert_eq!(render("{{ '' | quote }}", v.clone()), "''");
    assert_eq!(render("{{ 42 | type_debug }}", v.clone()), "int");
    assert_eq!(render("{{ {} | type_debug }}", v), "dict");
}

#[test]
fn regex_filters_and_tests() {
    let v = json!({});
    assert_eq!(
        render(
            // Ansible keeps backslashes in a playbook string's literals: `\1` is a group.
            r"{{ 'ansible' | regex_replace('^a.*i(.*)$', 'a\1') }}",
            v.clone()
        ),
        "able"
    );
    assert_eq!(
        render(
            r"{{ 'host-01' | regex_replace('(?P<name>\w+)-(\d+)', '\g<2>.\g<name>') }}",
            v.clone()
        ),
        "01.host"
    );
    assert_eq!(
        render("{{ 'a.b.c' | regex_replace('\\.', '$') }}", v.clone()),
        "a$b$c"
    );
    assert_eq!(
        render("{{ 'aaa' | regex_replace('a', 'b', count=2) }}", v.clone()),
        "bba"
    );
    assert_eq!(
        render(
            "{{ 'ABC' | regex_replace('b', 'x', ignorecase=true) }}",
            v.clone()
        ),
        "AxC"
    );
    assert_eq!(
        render("{{ 'server1 db22' | regex_search('\\d+') }}", v.clone()),
        "1"
    );
    assert_eq!(
        render("{{ 'abc' | regex_search('z') is none }}", v.clone()),
        "True"
    );
    assert_eq!(
        render(
            r"{{ 'k=v' | regex_search('(\w)=(?P<val>\w)', '\1', '\g<val>') }}",
            v.clone()
        ),
        "['k', 'v']"
    );
    assert_eq!(
        render("{{ 'a1 b22 c333' | regex_findall('\\d+') }}", v.clone()),
        "['1', '22', '333']"
    );
    assert_eq!(
        render("{{ 'a=1 b=2' | regex_findall('(\\w)=(\\d)') }}", v.clone()),
        // Python shows tuples here, ("a", "1"); JSON-shaped values have only lists.
        "[['a', '1'], ['b', '2']]"
    );
    assert_eq!(render("{{ 'a.b' | regex_escape }}", v.clone()), r"a\.b");
    assert_eq!(render("{{ 'foobar' is match('foo') }}", v.clone()), "True");
    assert_eq!(render("{{ 'foobar' is match('bar') }}", v.clone()), "False");
    assert_eq!(render("{{ 'foobar' is search('bar') }}", v.clone()), "True");
    assert_eq!(
        render("{{ 'FOO' is search('foo', ignorecase=true) }}", v.clone()),
        "True"
    );
    assert_eq!(
        render("{{ 'foobar' is regex('bar', match_type='match') }}", v),
        "False"
    );
}

#[test]
fn dict_filters() {
    let vars = json!({
        "a": {"x": 1, "n": {"p": 1, "q": [1]}},
        "b": {"y": 2, "n": {"q": [2]}},
    });
    assert_eq!(
        templates().eval("a | combine(b)", &vars, "t").unwrap(),
        json!({"n": {"q": [2]}, "x": 1, "y": 2})
    );
    assert_eq!(
        templates()
            .eval("a | combine(b, recursive=true)", &vars, "t")
            .unwrap(),
        json!({"n": {"p": 1, "q": [2]}, "x": 1, "y": 2})
    );
    assert_eq!(
        templates()
            .eval(
                "a | combine(b, recursive=true, list_merge='append')",
                &vars,
                "t"
            )
            .unwrap(),
        json!({"n": {"p": 1, "q": [1, 2]}, "x": 1, "y": 2})
    );
    assert_eq!(
        templates()
            .eval("{} | combine([a, b])", &vars, "t")
            .unwrap()["y"],
        json!(2)
    );
    assert_eq!(
        templates()
            .eval("{'k': 1} | dict2items", &vars, "t")
            .unwrap(),
        json!([{"key": "k", "value": 1}])
    );
    assert_eq!(
        templates()
            .eval(
                "{'k': 1} | dict2items(key_name='n', value_name='v')",
                &vars,
                "t"
            )
            .unwrap(),
        json!([{"n": "k", "v": 1}])
    );
    assert_eq!(
        templates()
            .eval("[{'key': 'k', 'value': 1}] | items2dict", &vars, "t")
            .unwrap(),
        json!({"k": 1})
    );
    assert_eq!(
        templates()
            .eval(
                "[{'n': 'k', 'v': 1}] | items2dict(key_name='n', value_name='v')",
                &vars,
                "t"
            )
            .unwrap(),
        json!({"k": 1})
    );
}

#[test]
fn hash_filter() {
    let v = json!({});
    assert_eq!(
        render("{{ 'abc' | hash('sha256') }}", v.clone()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        render("{{ 'abc' | hash }}", v.clone()),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        render("{{ 'abc' | hash('sha512') | length }}", v.clone()),
        "128"
    );
    assert_eq!(
        render("{{ 'abc' | hash('sha384') | length }}", v.clone()),
        "96"
    );
    assert_eq!(
        render("{{ 'abc' | hash('sha224') }}", v.clone()),
        "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"
    );
    assert!(render_err("{{ 'abc' | hash('md4') }}", v).contains("unsupported algorithm `md4`"));
}

#[test]
fn conversion_filters() {
    let t = templates();
    let e = |s: &str| t.eval(s, &json!({"r": null}), "t").unwrap();
    assert_eq!(e("true | ternary('a', 'b')"), json!("a"));
    assert_eq!(e("0 | ternary('a', 'b')"), json!("b"));
    assert_eq!(e("r | ternary('a', 'b', 'n')"), json!("n"));
    for yes in ["'yes'", "'On'", "'1'", "'true'", "1", "true"] {
        assert_eq!(e(&format!("{yes} | bool")), json!(true), "{yes}");
    }
    for no in ["'no'", "'off'", "'0'", "'nope'", "0", "false", "2"] {
        assert_eq!(e(&format!("{no} | bool")), json!(false), "{no}");
    }
    assert_eq!(e("r | bool"), json!(null));
    assert_eq!(e("'42' | int"), json!(42));
    assert_eq!(e("' 7 ' | int"), json!(7));
    assert_eq!(e("'3.9' | int"), json!(3));
    assert_eq!(e("'abc' | int"), json!(0));
    assert_eq!(e("'abc' | int(5)"), json!(5));
    assert_eq!(e("'0x1F' | int(base=16)"), json!(31));
    assert_eq!(e("true | int"), json!(1));
    assert_eq!(e("5 | string"), json!("5"));
}

#[test]
fn list_filters() {
    let t = templates();
    let e = |s: &str| t.eval(s, &json!({}), "t").unwrap();
    assert_eq!(e("[1, [2, [3, none]]] | flatten"), json!([1, 2, 3]));
    assert_eq!(e("[1, [2, [3]]] | flatten(1)"), json!([1, 2, [3]]));
    assert_eq!(e("[1, 2, 2] | union([2, 3])"), json!([1, 2, 3]));
    assert_eq!(e("[1, 2, 3] | intersect([3, 2, 9])"), json!([2, 3]));
    assert_eq!(e("[1, 2, 3] | difference([2])"), json!([1, 3]));
    assert_eq!(e("[1, 2] | symmetric_difference([2, 3])"), json!([1, 3]));
}

#[test]
fn result_tests() {
    let t = templates();
    let vars = json!({
        "ok": {"changed": false, "rc": 0},
        "bad": {"failed": true, "changed": true},
        "skip": {"skipped": true, "changed": false},
        "looped": {"results": [{"changed": false}, {"changed": true}]},
        "text": "x",
    });
    let b = |s: &str| t.eval_bool(s, &vars, "t").unwrap();
    assert!(b("ok is success") && b("ok is succeeded") && !b("ok is failed"));
    assert!(b("bad is failed") && b("bad is changed") && !b("bad is success"));
    assert!(b("skip is skipped") && !b("skip is changed") && !b("ok is skipped"));
    assert!(b("looped is changed"));
    let err = t
        .eval_bool("text is failed", &vars, "t")
        .unwrap_err()
        .to_string();
    assert!(err.contains("expects a dictionary"), "{err}");
    let err = t
        .eval_bool("nope is failed", &vars, "t")
        .unwrap_err()
        .to_string();
    assert_eq!(err, "undefined variable `nope` in t");
}

#[test]
fn python_methods() {
    let vars = json!({"d": {"a": 1, "b": 2}, "s": "  Web,DB  ", "xs": [3, 4, 3]});
    let e = |s: &str| templates().eval(s, &vars, "t").unwrap();
    assert_eq!(
        render(
            "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
            vars.clone()
        ),
        "a=1;b=2;"
    );
    assert_eq!(e("d.keys() | list"), json!(["a", "b"]));
    assert_eq!(e("d.values() | list"), json!([1, 2]));
    assert_eq!(e("d.get('a')"), json!(1));
    assert_eq!(e("d.get('z', 9)"), json!(9));
    assert_eq!(e("d.get('z')"), json!(null));
    assert_eq!(e("s.strip().lower().split(',')"), json!(["web", "db"]));
    assert_eq!(e("' a  b '.split()"), json!(["a", "b"]));
    assert_eq!(e("'a,b,c'.split(',', 1)"), json!(["a", "b,c"]));
    assert_eq!(e("'xxhixx'.strip('x')"), json!("hi"));
    assert_eq!(e("s.strip().startswith(('DB', 'Web'))"), json!(true));
    assert_eq!(e("'file.conf'.endswith('.conf')"), json!(true));
    assert_eq!(e("'aaa'.replace('a', 'b', 2)"), json!("bba"));
    assert_eq!(e("', '.join(['a', 'b'])"), json!("a, b"));
    assert_eq!(e("'hello'.upper()"), json!("HELLO"));
    assert_eq!(e("'hELLO'.capitalize()"), json!("Hello"));
    assert_eq!(e("'42'.isdigit()"), json!(true));
    assert_eq!(e("'héllo'.find('l')"), json!(2));
    assert_eq!(e("xs.index(4)"), json!(1));
    assert_eq!(e("xs.count(3)"), json!(2));
    let err = templates()
        .eval("d.nope()", &vars, "t")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "template error in t: unknown method: map has no method named nope"
    );
}

#[test]
fn shared_variables_are_seen_under_each_render_own() {
    let t = templates();
    t.share(json!({
        "hostvars": {"h1": {"rack": "r1"}, "h2": {"rack": "r2"}},
        "groups": {"app": ["h1", "h2"]},
    }));
    let vars = json!({"inventory_hostname": "h2", "groups": {"app": ["mine"]}});
    // In strings, expressions, files' renders and conditions alike.
    assert_eq!(
        t.render_str("{{ hostvars[inventory_hostname].rack }}", &vars, "t")
            .unwrap(),
        "r2"
    );
    assert_eq!(t.eval("hostvars | length", &vars, "t").unwrap(), json!(2));
    assert!(t.eval_bool("'h1' in hostvars", &vars, "t").unwrap());
    // A render's own variables win over the shared ones.
    assert_eq!(
        t.render_str("{{ groups.app | join(',') }}", &vars, "t")
            .unwrap(),
        "mine"
    );
    // An undefined name below a shared variable is named in full.
    match t.render_str("{{ hostvars['h1'].weight }}", &vars, "site.yml:3:5") {
        Err(e) => assert_eq!(e.undefined_name(), Some("hostvars.h1.weight"), "{e}"),
        Ok(out) => panic!("rendered {out:?}"),
    }
    // A later play's share replaces the earlier one.
    t.share(json!({"hostvars": {"h3": {}}}));
    assert_eq!(
        t.eval("hostvars | list", &vars, "t").unwrap(),
        json!(["h3"])
    );
}

#[test]
fn variables_whose_values_are_templates_resolve_when_read() {
    let vars = json!({
        "app_version": "{{ version | default('1.0.0') }}",
        "names": ["app-{{ app_version }}"],
        "ports": {"http": "{{ 8000 + 80 }}"},
        "list": "{{ names + ['b'] }}",
    });
    assert_eq!(
        render(
            "{{ app_version }} {{ names[0] }} {{ ports.http }} {{ list | length }}",
            vars.clone()
        ),
        "1.0.0 app-1.0.0 8080 2"
    );
    assert!(
        templates()
            .eval_bool("app_version == '1.0.0'", &vars, "t")
            .unwrap()
    );
    assert_eq!(
        render(
            "{% for n in names %}{{ n }}{% endfor %} {{ ports | tojson }}",
            vars
        ),
        "app-1.0.0 {\"http\":8080}"
    );
}

#[test]
fn a_variable_loop_and_an_undefined_name_inside_a_value_are_errors() {
    let err = render_err("{{ a }}", json!({"a": "{{ b }}", "b": "{{ a }}"}));
    assert!(
        err.contains("recursive loop detected in template string"),
        "{err}"
    );
    let err = render_err("{{ a }}", json!({"a": "x{{ nope }}"}));
    assert!(err.contains("undefined variable `nope`"), "{err}");
}

#[test]
fn another_hosts_variables_resolve_in_that_hosts_variables() {
    let vars = json!({
        "inventory_hostname": "h1",
        "hostvars": {
            "h1": {"fqdn": "{{ inventory_hostname }}.corp"},
            "h2": {"fqdn": "{{ inventory_hostname }}.corp", "port": "{{ 8000 + 1 }}"},
        },
    });
    assert_eq!(
        render(
            "{{ hostvars['h2'].fqdn }} {{ hostvars.h1.fqdn }} {{ hostvars.h2.port }} {{ hostvars | length }}",
            vars
        ),
        "h2.corp h1.corp 8001 2"
    );
}

#[test]
fn another_hosts_missing_variable_is_undefined_not_the_current_hosts() {
    // `hostvars['h2'].x` fell back to the current host's `x` when h2 had none.
    let vars = json!({
        "inventory_hostname": "h1",
        "only_mine": "h1's",
        "hostvars": {
            "h1": {"only_mine": "h1's"},
            "h2": {"port": "{{ 8000 + 1 }}", "label": "{{ inventory_hostname }}-{{ only_mine | default('none') }}"},
        },
    });
    assert_eq!(
        render(
            "{{ hostvars['h2'].only_mine | default('undefined') }} {{ hostvars.h2.port }} {{ hostvars.h2 | list | sort | join(',') }}",
            vars.clone()
        ),
        "undefined 8001 inventory_hostname,label,port"
    );
    assert_eq!(
        render(
            "{{ 'only_mine' in hostvars.h2 }} {{ hostvars.h1.only_mine }}",
            vars
        ),
        "False h1's"
    );
}

#[test]
fn comment_frames_each_line_as_ansible_does() {
    let r = |src: &str| render(src, json!({"two": "a\nb", "gap": "a\n\nb"}));
    assert_eq!(r("{{ two | comment }}"), "#\n# a\n# b\n#");
    // A line holding only the decoration loses its trailing space.
    assert_eq!(r("{{ gap | comment }}"), "#\n# a\n#\n# b\n#");
    assert_eq!(r("{{ 'x' | comment('c') }}"), "//\n// x\n//");
    assert_eq!(r("{{ 'x' | comment('cblock') }}"), "/*\n *\n * x\n *\n */");
    assert_eq!(r("{{ 'x' | comment('xml') }}"), "<!--\n -\n - x\n -\n-->");
    assert_eq!(
        r("{{ 'x' | comment(decoration='; ', prefix_count=2, postfix='') }}"),
        ";\n;\n; x\n"
    );
    let err = render_err("{{ 'x' | comment('lisp') }}", json!({}));
    assert!(err.contains("plain, erlang, c, cblock, xml"), "{err}");
}

#[test]
fn an_expression_before_a_newline_was_kept_native_where_ansible_gives_text() {
    let vars = json!({"one": 1, "d": {"uid": 1001}, "tags": ["a", "b"], "word": "shop"});
    let value = |s: &str| templates().render_value(&json!(s), &vars, "t").unwrap();
    // A bare variable name keeps its value (ansible-core's SINGLE_VAR).
    assert_eq!(value("{{ one }}\n"), json!(1));
    assert_eq!(value("{{ tags }}\n"), json!(["a", "b"]));
    assert_eq!(value("{{ word }}\n"), json!("shop\n"));
    // Anything else is rendered text, its newline kept.
    assert_eq!(value("{{ d.uid }}\n"), json!("1001\n"));
    assert_eq!(value("{{ 1 }}\n"), json!("1\n"));
    assert_eq!(value("{{ one + 1 }}\n"), json!("2\n"));
    assert_eq!(value("{{ tags | list }}\n"), json!(["a", "b"]));
}

/// `!unsafe` text (marked, as the YAML reader gives it) is never
/// templated: not as a variable, not through another variable's template,
/// not when the result is rendered again (render_deep), and what is made
/// of it stays marked for set_fact and loop items.
#[test]
fn unsafe_text_is_never_templated() {
    let t = templates();
    let vars = json!({
        "raw": {"__ansible_unsafe": "{{ x }}"},
        "via": "{{ raw }}/y",
        "list": [{"__ansible_unsafe": "{{ a }}"}, 3],
        "x": "never read",
    });
    let deep = |v: Value| t.render_deep(&v, &vars, "t").unwrap();
    assert_eq!(deep(json!("{{ raw }}")), json!("{{ x }}"));
    assert_eq!(deep(json!("{{ via }}")), json!("{{ x }}/y"));
    assert_eq!(deep(json!("<{{ list[0] }}>")), json!("<{{ a }}>"));
    assert_eq!(
        deep(json!({"content": {"__ansible_unsafe": "{{ x }}"}})),
        json!({"content": "{{ x }}"})
    );
    assert_eq!(
        t.render_deep_marked(&json!("{{ via }}"), &vars, "t")
            .unwrap(),
        json!({"__ansible_unsafe": "{{ x }}/y"})
    );
    assert_eq!(
        t.render_value_marked(&json!("{{ list }}"), &vars, "t")
            .unwrap(),
        json!([{"__ansible_unsafe": "{{ a }}"}, 3])
    );
    // Text that read nothing unsafe is still templated again.
    let plain = json!({"base": "{{ x }}", "x": "done"});
    assert_eq!(
        t.render_deep(&json!("{{ base }}"), &plain, "t").unwrap(),
        json!("done")
    );
    assert!(
        t.eval_bool("raw == '{' ~ '{ x }' ~ '}'", &vars, "t")
            .unwrap()
    );
}

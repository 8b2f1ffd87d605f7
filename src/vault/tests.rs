//! Ciphertexts made by `ansible-vault encrypt_string` (ansible-core 2.18)
//! with the password `hunter2-pass`.

use super::envelope::Envelope;
use super::*;

const V11: &str = "$ANSIBLE_VAULT;1.1;AES256
32336561303966633337616431323461356333326139353439353361333538636232333938623138
6261333737343666633039663664356339356433613536620a376532343030393630616665356634
37653533613435663636353538363439353261613864303163653764616661376666613265343736
6330663761393333650a386230383263333134633832616538393661633734626662333738666431
3834";

const V12: &str = "$ANSIBLE_VAULT;1.2;AES256;prod
35653031356261333334633462356137633835343634383130356637633536383537313030643062
6162656639333830393139653031663330396365393939390a393165363164373433313837336532
38373566623736613863383435333933396565303166666533643939356531623231313434306439
3263336636613835300a333035323133346331363932613837323532396437353232346639333733
6364";

#[test]
fn decrypts_what_ansible_vault_encrypted_and_only_with_its_password() {
    let v11 = Envelope::parse(V11).unwrap();
    assert_eq!(v11.label, None);
    assert_eq!(
        cipher::decrypt(&v11, b"hunter2-pass").as_deref(),
        Some(&b"s3cret value"[..])
    );
    assert_eq!(cipher::decrypt(&v11, b"hunter3-pass"), None);
    let v12 = Envelope::parse(V12).unwrap();
    assert_eq!(v12.label.as_deref(), Some("prod"));
    assert_eq!(
        cipher::decrypt(&v12, b"hunter2-pass").as_deref(),
        Some(&b"labelled"[..])
    );
}

#[test]
fn a_changed_byte_fails_the_hmac() {
    let mut v = Envelope::parse(V11).unwrap();
    v.ciphertext[0] ^= 1;
    assert_eq!(cipher::decrypt(&v, b"hunter2-pass"), None);
}

#[test]
fn malformed_envelopes_say_why() {
    let err = |t: &str| Envelope::parse(t).unwrap_err().to_string();
    assert!(err("$ANSIBLE_VAULT;1.0;AES\n00").contains("1.0"));
    assert!(err("$ANSIBLE_VAULT;1.1;DES\n00").contains("DES"));
    assert!(err("$ANSIBLE_VAULT;1.1;AES256\nzz").contains("hex"));
}

#[test]
fn inline_values_become_their_plaintext_and_keep_every_line() {
    let secrets = [Secret {
        label: "default".into(),
        password: b"hunter2-pass".to_vec(),
    }];
    let indented: String = V11.lines().map(|l| format!("  {l}\n")).collect();
    let text = format!("a: 1\npassword: !vault |\n{indented}after: 2\n");
    let out = decrypt_inline_values_with(&text, |t| decrypt_with(t, &secrets)).unwrap();
    assert_eq!(out.lines().count(), text.lines().count());
    assert!(
        out.starts_with("a: 1\npassword: \"s3cret value\"\n"),
        "{out}"
    );
    assert!(out.ends_with("after: 2\n"), "{out}");
    assert_eq!(
        redact("the password is s3cret value."),
        "the password is ********."
    );
    // A value in a nested mapping, the next key indented as it.
    let deeper: String = V11.lines().map(|l| format!("      {l}\n")).collect();
    let text = format!("vars:\n  one: !vault |\n{deeper}  two: 2\n");
    let out = decrypt_inline_values_with(&text, |t| decrypt_with(t, &secrets)).unwrap();
    assert_eq!(out.lines().count(), text.lines().count());
    assert!(out.ends_with("\n  two: 2\n"), "{out:?}");
}

#[test]
fn the_vault_id_s_passwords_are_tried_first_then_the_others() {
    let wrong = Secret {
        label: "prod".into(),
        password: b"not-it".to_vec(),
    };
    let right = Secret {
        label: "dev".into(),
        password: b"hunter2-pass".to_vec(),
    };
    assert_eq!(
        decrypt_with(V12, &[wrong.clone(), right]).unwrap(),
        "labelled"
    );
    let err = decrypt_with(V12, &[wrong]).unwrap_err().to_string();
    assert!(err.contains("vault id `prod`"), "{err}");
    assert!(matches!(decrypt_with(V11, &[]), Err(VaultError::NoSecrets)));
}

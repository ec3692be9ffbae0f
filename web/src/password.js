// The device's password rule (SPEC §2; vigil.security.passwords.check_password_rule), checked as
// the user types. The device checks it again and its word is final.
export const MIN_LENGTH = 8;
export const MAX_LENGTH = 64;

export function passwordRules(user, password) {
  const classes = [/[A-Z]/, /[a-z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password));
  return [
    {
      id: "length",
      text: `${MIN_LENGTH} to ${MAX_LENGTH} characters`,
      ok: password.length >= MIN_LENGTH && password.length <= MAX_LENGTH,
    },
    {
      id: "classes",
      text: "at least three of: upper case, lower case, digits, symbols",
      ok: classes.length >= 3,
    },
    { id: "ascii", text: "printable ASCII characters only", ok: /^[\x20-\x7e]*$/.test(password) },
    {
      id: "user",
      text: `does not contain the user name (${user})`,
      ok: !user || !password.toLowerCase().includes(user.toLowerCase()),
    },
  ];
}

import { z } from "zod";
import { oneLine } from "./one-line";

/**
 * Shared by the forms and the API calls. The hub's rules stay authoritative
 * (docs/auth.md): these only catch the obvious before a round trip.
 */

export const PASSWORD_MIN = 10;
export const PASSWORD_HINT = `At least ${PASSWORD_MIN} characters. Not your email address, and not a common password.`;

export const email = z.string().trim().pipe(z.email("Enter a valid email address").max(320));
export const newPassword = z
  .string()
  .min(PASSWORD_MIN, `At least ${PASSWORD_MIN} characters`)
  .max(256, "At most 256 characters");
/** One line of visible text, like a workspace name (docs/domain.md). */
export const displayName = oneLine(100, "Enter a name");

/** The policy's "not your email or its local part", as far as the form knows the email. */
function notTheEmail(password: string, address: string): boolean {
  const p = password.trim().toLowerCase();
  const e = address.trim().toLowerCase();
  return !e || (p !== e && p !== e.split("@")[0]);
}

export const loginSchema = z.object({
  email,
  password: z.string().min(1, "Enter your password").max(1024),
});

export const registerSchema = z
  .object({
    display_name: displayName,
    email,
    password: newPassword,
    confirm: z.string(),
  })
  .refine((v) => notTheEmail(v.password, v.email), { path: ["password"], message: "Must not be your email address" })
  .refine((v) => v.password === v.confirm, { path: ["confirm"], message: "Passwords do not match" });

export const forgotPasswordSchema = z.object({ email });

export const resetPasswordSchema = z
  .object({
    password: newPassword,
    confirm: z.string(),
  })
  .refine((v) => v.password === v.confirm, { path: ["confirm"], message: "Passwords do not match" });

export const profileSchema = z.object({ display_name: displayName });

export const changePasswordSchema = z
  .object({
    current_password: z.string().min(1, "Enter your current password").max(1024),
    new_password: newPassword,
    confirm: z.string(),
  })
  .refine((v) => v.new_password === v.confirm, { path: ["confirm"], message: "Passwords do not match" })
  .refine((v) => v.new_password !== v.current_password, { path: ["new_password"], message: "Choose a password you have not used here" });

export type LoginInput = z.infer<typeof loginSchema>;
export type RegisterInput = z.infer<typeof registerSchema>;
export type ForgotPasswordInput = z.infer<typeof forgotPasswordSchema>;
export type ResetPasswordInput = z.infer<typeof resetPasswordSchema>;
export type ProfileInput = z.infer<typeof profileSchema>;
export type ChangePasswordInput = z.infer<typeof changePasswordSchema>;

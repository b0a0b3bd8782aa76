/**
 * Reading a webhook's body: JSON, or a form post (Twilio signs the form fields, so a form is read
 * before the signature check; JSON is parsed only once the delivery is authenticated).
 */
import { BODY_PATH, HttpError, MalformedJsonError } from "../http.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A form post as a format sees it. */
export interface FormInput {
  kind: "form";
  form: URLSearchParams;
  /** The request URL's query (signed with the form by Twilio): e.g. `callback_data`. */
  query?: URLSearchParams;
}

/** Whether a Content-Type is a URL-encoded form. */
export function isForm(contentType: string | null): boolean {
  return contentType !== null &&
    contentType.toLowerCase().startsWith("application/x-www-form-urlencoded");
}

/** The form of a form post; 400 `malformed_form` when it is not UTF-8. */
export function readForm(body: Uint8Array, url: string): FormInput {
  try {
    const query = new URL(url).searchParams;
    return { kind: "form", form: new URLSearchParams(utf8.decode(body)), query };
  } catch (error) {
    throw new HttpError(400, "malformed_form", "request body is not a valid UTF-8 form", {
      cause: error,
      details: [{ path: BODY_PATH, message: "not a valid UTF-8 form" }],
    });
  }
}

/** The JSON value of a body; 400 `malformed_json` when it is not UTF-8 JSON. */
export function readJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(utf8.decode(body));
  } catch (error) {
    throw new MalformedJsonError(error);
  }
}

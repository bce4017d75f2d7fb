// The video visit page (provider, patient or guest): the visit itself is in visit/app.js.
import { startVisit } from "./visit/app.js";

startVisit({ root: document.getElementById("visit-app") });

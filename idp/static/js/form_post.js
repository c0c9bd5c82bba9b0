// OAuth 2.0 Form Post Response Mode: send the answer back to the relying party at once.
document.getElementById("form-post-response").submit();

"""The Content Security Policy (no inline script or style) does not break Django's own admin pages."""

import pytest

from tests.browser.conftest import login

# Registered before any page script runs (through the DevTools protocol, which the CSP does not govern), to name
# the page of a violation; Chromium also logs each one as a console error, which fails the `page` fixture.
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_admin_index_changelist_and_change_forms_load_without_csp_violations(page, live_server, pets, admin_user):
    page.add_init_script(COLLECT_VIOLATIONS)
    login(page, live_server, admin_user.username)
    for path, heading in [
        ("/admin/", "Site administration"),
        ("/admin/catalog/dataset/", "Select dataset to change"),
        (f"/admin/catalog/dataset/{pets.pk}/change/", "Change dataset"),
        (f"/admin/auth/user/{admin_user.pk}/change/", "Change user"),
        ("/admin/auth/user/add/", "Add user"),
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
        assert heading in page.inner_text("#content"), path
        assert page.evaluate("window.__cspViolations") == [], path
        if path.endswith("/change/") and "auth/user" in path:
            # The admin's own scripts ran: the groups field became the JavaScript two-box chooser.
            assert page.locator("#id_groups_from").count() == 1

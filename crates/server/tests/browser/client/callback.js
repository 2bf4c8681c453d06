// Trade the access code for a token, then show who signed in.
(async () => {
  const status = document.getElementById('status');
  try {
    const server = sessionStorage.getItem('sample_app_server');
    await finishSignIn(server, sessionStorage.getItem('sample_app_id'));
    const reply = await graphql(server, '{ activeUser { name email } }');
    if (reply.errors) throw new Error(JSON.stringify(reply.errors));
    document.getElementById('user-name').textContent = reply.data.activeUser.name;
    document.getElementById('user-email').textContent = reply.data.activeUser.email;
    status.textContent = 'Signed in';
  } catch (e) {
    status.textContent = `Sign-in failed: ${e.message}`;
  }
})();

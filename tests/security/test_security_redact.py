"""Item 6 (secrets stay secret): the one masking rule both halves use."""

from fa_agent import redact

SECRET = 's3cr3tSIG'


def test_password_and_query_values_are_masked():
    shown = redact.url('https://tenant:%s@swift.example/v1/img?'
                       'temp_url_sig=%s&temp_url_expires=99'
                       % (SECRET, SECRET))
    assert SECRET not in shown
    assert shown == ('https://tenant:***@swift.example/v1/img?'
                     'temp_url_sig=***&temp_url_expires=***')


def test_urls_inside_messages_are_masked():
    message = "cannot download image 'https://h/i.qcow2?X-Amz-Signature=%s'" \
        " (after 5 attempts)" % SECRET
    shown = redact.text(message)
    assert SECRET not in shown
    assert shown.endswith("?X-Amz-Signature=***' (after 5 attempts)")


def test_plain_urls_are_unchanged():
    for value in ('http://10.0.0.1:8080/image.raw', 'file:///srv/img.tar'):
        assert redact.url(value) == value
        assert redact.text('image %s' % value) == 'image %s' % value


def test_punctuation_after_a_url_stays_in_the_message():
    shown = redact.text('failed (https://h/i?sig=%s): giving up; see '
                        'https://h/j?t=%s.' % (SECRET, SECRET))
    assert shown == 'failed (https://h/i?sig=***): giving up; see ' \
        'https://h/j?t=***.'
